"""ZeroMQ policy server: one Policy, many clients (ROUTER socket), errors as codes, never tracebacks."""

from __future__ import annotations

import ipaddress
import logging
import time
from collections import deque
from pathlib import Path
from typing import Any
from urllib.parse import urlparse

import numpy as np
import zmq

from vla.serving.codec import PROTOCOL_VERSION, REQUEST_KINDS, ProtocolError, error, pack, unpack
from vla.types import Policy

log = logging.getLogger(__name__)
DEFAULT_BIND = "tcp://127.0.0.1:5555"
MAX_MESSAGE_BYTES = 16 * 2**20  # 16 MiB: several 512x512 cameras; anything bigger is refused with an error
HARD_LIMIT_BYTES = 4 * MAX_MESSAGE_BYTES  # beyond this ZeroMQ drops the peer before we ever see the data


def is_loopback(address: str) -> bool:
    """True for ipc://, inproc:// and tcp:// on 127.0.0.0/8, ::1 or localhost."""
    url = urlparse(address)
    if url.scheme in ("ipc", "inproc"):
        return True
    host = (url.hostname or "").strip("[]")
    if host == "localhost":
        return True
    try:
        return ipaddress.ip_address(host).is_loopback
    except ValueError:
        return False


def load_server_keys(keys_dir: str | Path) -> tuple[bytes, bytes]:
    """(public, secret) from DIR/server.key_secret, made by `vla keys`."""
    import zmq.auth

    path = Path(keys_dir) / "server.key_secret"
    if not path.is_file():
        raise FileNotFoundError(f"{path} not found; create keys with `vla keys --out {keys_dir}`")
    public, secret = zmq.auth.load_certificate(str(path))
    return public, secret


class PolicyServer:
    def __init__(self, policy: Policy, bind: str = DEFAULT_BIND, curve_keys: str | Path | None = None,
                 max_bytes: int = MAX_MESSAGE_BYTES, context: zmq.Context | None = None):
        if not is_loopback(bind) and curve_keys is None:
            raise ValueError(
                f"refusing to bind {bind} without encryption: only loopback addresses may be served in the clear. "
                "Create CURVE keys with `vla keys --out DIR` and pass --curve-keys DIR"
            )
        self.policy = policy
        self.max_bytes = max_bytes
        self.context = context or zmq.Context.instance()
        self.socket = self.context.socket(zmq.ROUTER)
        self.socket.setsockopt(zmq.LINGER, 0)
        self.socket.setsockopt(zmq.MAXMSGSIZE, HARD_LIMIT_BYTES)
        if curve_keys is not None:
            public, secret = load_server_keys(curve_keys)
            self.socket.curve_publickey, self.socket.curve_secretkey = public, secret
            self.socket.curve_server = True
        self.socket.bind(bind)
        self.address = self.socket.getsockopt_string(zmq.LAST_ENDPOINT)
        self.started = time.monotonic()
        self.stats = {"requests": 0, "errors": 0}

    # --- request handling -------------------------------------------------------------------------
    def handle(self, message: bytes, queued_s: float = 0.0) -> bytes:
        """One request in, one reply out; every failure becomes an error reply."""
        self.stats["requests"] += 1
        request_id: Any = -1
        try:
            envelope = unpack(message, self.max_bytes)
            request_id, kind, payload = envelope["id"], envelope["kind"], envelope.get("payload", {})
            if kind not in REQUEST_KINDS:
                raise ProtocolError("unknown_kind", f"unknown request kind {kind!r}; expected one of {REQUEST_KINDS}")
            return pack("reply", request_id, getattr(self, f"_on_{kind}")(payload, queued_s))
        except ProtocolError as exc:
            self.stats["errors"] += 1
            return error(request_id, exc.code, str(exc))
        except (ValueError, KeyError, TypeError) as exc:  # the policy refused the observation
            self.stats["errors"] += 1
            return error(request_id, "bad_request", f"{type(exc).__name__}: {exc}")
        except Exception as exc:  # noqa: BLE001 - the server must keep serving
            self.stats["errors"] += 1
            log.exception("request %s failed", request_id)
            return error(request_id, "internal", f"{type(exc).__name__}: {exc}")

    def _on_health(self, payload: dict, queued_s: float) -> dict:
        return {"status": "ok", "uptime_s": round(time.monotonic() - self.started, 3), **self.stats}

    def _on_metadata(self, payload: dict, queued_s: float) -> dict:
        return {**self.policy.metadata, "protocol_version": PROTOCOL_VERSION, "max_message_bytes": self.max_bytes}

    def _on_reset(self, payload: dict, queued_s: float) -> dict:
        self.policy.reset()
        return {"status": "ok"}

    def _on_infer(self, payload: dict, queued_s: float) -> dict:
        start = time.perf_counter()
        obs = payload.get("observation")
        if not isinstance(obs, dict) or not all(isinstance(k, str) for k in obs):
            raise ProtocolError("bad_request", "infer needs payload.observation: a map with string keys")
        prepared = time.perf_counter()
        actions = np.asarray(self.policy.predict_chunk(obs), dtype=np.float32)
        done = time.perf_counter()
        if actions.ndim != 2 or not np.all(np.isfinite(actions)):
            raise ProtocolError("internal", f"the policy produced an invalid chunk of shape {actions.shape}")
        return {"actions": actions, "timing": {"queue_ms": round(queued_s * 1000, 3),
                                               "preprocess_ms": round((prepared - start) * 1000, 3),
                                               "inference_ms": round((done - prepared) * 1000, 3)}}

    # --- loop ------------------------------------------------------------------------------------
    def serve(self, stop=None, poll_ms: int = 100) -> None:
        """Serve until `stop()` returns True (or forever). Requests are answered in arrival order."""
        pending: deque[tuple[list[bytes], float]] = deque()
        poller = zmq.Poller()
        poller.register(self.socket, zmq.POLLIN)
        while not (stop and stop()):
            if not pending and not poller.poll(poll_ms):
                continue
            while True:  # drain what has arrived, so queue time is measured across clients
                try:
                    pending.append((self.socket.recv_multipart(zmq.NOBLOCK), time.perf_counter()))
                except zmq.Again:
                    break
            frames, arrived = pending.popleft()
            if len(frames) < 2:
                continue  # not a routed message: nobody to answer
            reply = self.handle(frames[-1], time.perf_counter() - arrived)
            self.socket.send_multipart([*frames[:-1], reply])

    def close(self) -> None:
        self.socket.close(linger=0)
