"""ZeroMQ policy server: one Policy, many clients (ROUTER socket), errors as codes, never tracebacks.

Two threads, and each ZeroMQ socket is touched by one of them only:
- the socket loop (the thread that calls `serve`) owns the ROUTER socket. It answers `health`
  and `metadata` at once, also while an inference runs, and queues `infer` and `reset`;
- the worker owns the policy: it runs the queued work one request at a time and hands each
  reply back to the loop over an inproc PAIR socket.

The queue holds at most one request per client (a newer one supersedes the one still waiting,
which is answered with error "superseded"), and a request whose deadline passed while it
waited is answered with error "expired" instead of being computed: a slow policy then makes
clients wait, never a backlog of stale observations (issue 19, seen as a 16 s `health`).
A policy with per-robot state (`session()`, e.g. the event-sparse policy's per-camera caches)
gets one session per client connection, so one server serves several robots without mixing them.
"""

from __future__ import annotations

import ipaddress
import itertools
import logging
import threading
import time
from collections import OrderedDict
from dataclasses import dataclass
from pathlib import Path
from typing import Any
from urllib.parse import urlparse

import numpy as np
import zmq
import zmq.auth

from vla.serving.codec import PROTOCOL_VERSION, REQUEST_KINDS, ProtocolError, error, pack, unpack
from vla.types import Policy

log = logging.getLogger(__name__)
DEFAULT_BIND = "tcp://127.0.0.1:5555"
MAX_MESSAGE_BYTES = 16 * 2**20  # 16 MiB: several 512x512 cameras; anything bigger is refused with an error
HARD_LIMIT_BYTES = 4 * MAX_MESSAGE_BYTES  # beyond this ZeroMQ drops the peer before we ever see the data
_SERVER_IDS = itertools.count()  # names each server's inproc reply channel


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
    path = Path(keys_dir) / "server.key_secret"
    if not path.is_file():
        raise FileNotFoundError(f"{path} not found; create keys with `vla keys --out {keys_dir}`")
    public, secret = zmq.auth.load_certificate(str(path))
    return public, secret


@dataclass
class _Job:
    """A request for the worker: who asked (the routing frames to answer on), what, and when it arrived."""

    route: list[bytes]  # the routing frames to answer on: the client's identity (and REQ's empty delimiter)
    request_id: int
    kind: str
    payload: dict
    arrived: float  # time.monotonic() at receipt
    deadline_s: float | None  # how long it may wait before its work starts; None: as long as it takes

    @property
    def client(self) -> bytes:
        return self.route[0]

    def expired(self, now: float) -> bool:
        return self.deadline_s is not None and now - self.arrived > self.deadline_s


class PolicyServer:
    def __init__(self, policy: Policy, bind: str = DEFAULT_BIND, curve_keys: str | Path | None = None,
                 max_bytes: int = MAX_MESSAGE_BYTES, context: zmq.Context | None = None, max_sessions: int = 16,
                 serves: str | None = None):
        if not is_loopback(bind) and curve_keys is None:
            raise ValueError(
                f"refusing to bind {bind} without encryption: only loopback addresses may be served in the clear. "
                "Create CURVE keys with `vla keys --out DIR` and pass --curve-keys DIR"
            )
        self.policy = policy
        self.serves = serves  # which robot this server is for (a ROS namespace): clients for another refuse it
        self.max_bytes = max_bytes
        self.max_sessions = max_sessions  # beyond this the least recently used client's session is dropped (reset)
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
        # requests: received; computed: `infer` requests handed to the policy; expired / superseded: answered
        # with that error, not computed
        self.stats = {"requests": 0, "errors": 0, "computed": 0, "expired": 0, "superseded": 0}
        self.queue: OrderedDict[bytes, _Job] = OrderedDict()  # per client, oldest first (loop thread only)
        self.running: _Job | None = None  # what the worker is doing (set and cleared by the loop thread)
        self.running_since = 0.0
        self.sessions: OrderedDict[bytes, Policy] = OrderedDict()  # worker thread only
        self._done_address = f"inproc://vla-policy-server-{next(_SERVER_IDS)}"
        self._done = self.context.socket(zmq.PAIR)  # worker -> loop: finished replies
        self._done.setsockopt(zmq.LINGER, 0)
        self._done.bind(self._done_address)
        self._work: list[_Job | None] = []
        self._work_ready = threading.Condition()
        self._worker = threading.Thread(target=self._work_loop, name="policy-worker", daemon=True)
        self._worker.start()

    # --- the socket loop -------------------------------------------------------------------------
    def serve(self, stop=None, poll_ms: int = 100) -> None:
        """Serve until `stop()` returns True (or forever)."""
        poller = zmq.Poller()
        poller.register(self.socket, zmq.POLLIN)
        poller.register(self._done, zmq.POLLIN)
        while not (stop and stop()):
            events = dict(poller.poll(poll_ms))
            if self._done in events:
                self._finish()
            if self.socket in events:
                while True:  # take everything that has arrived, so a newer request can supersede an older one
                    try:
                        self._accept(self.socket.recv_multipart(zmq.NOBLOCK))
                    except zmq.Again:
                        break
            self._dispatch()

    def _accept(self, frames: list[bytes]) -> None:
        """Answer health/metadata and faults at once; queue infer/reset (one per client)."""
        if len(frames) < 2:
            return  # not a routed message: nobody to answer
        self.stats["requests"] += 1
        request_id: Any = -1
        try:
            envelope = unpack(frames[-1], self.max_bytes)
            request_id, kind = envelope["id"], envelope["kind"]
            if kind not in REQUEST_KINDS:
                raise ProtocolError("unknown_kind", f"unknown request kind {kind!r}; expected one of {REQUEST_KINDS}")
            if kind == "health":
                return self._reply(frames[:-1], pack("reply", request_id, self._health(frames[0])))
            if kind == "metadata":
                return self._reply(frames[:-1], pack("reply", request_id, self._metadata()))
        except ProtocolError as exc:
            self.stats["errors"] += 1
            return self._reply(frames[:-1], error(request_id, exc.code, str(exc)))
        deadline = envelope.get("deadline_ms")
        job = _Job(frames[:-1], request_id, kind, envelope.get("payload", {}), time.monotonic(),
                   None if deadline is None else deadline / 1000)
        old = self.queue.pop(job.client, None)
        if old is not None:  # the client gave up on it: answer it without computing
            self.stats["superseded"] += 1
            self._reply(old.route, error(old.request_id, "superseded",
                                          f"request {old.request_id} was superseded by request {request_id} "
                                          "from the same client before it started"))
        self.queue[job.client] = job

    def _dispatch(self) -> None:
        """Hand the oldest queued request to the worker when it is free; expired ones are answered, not run."""
        now = time.monotonic()
        while self.running is None and self.queue:
            _, job = self.queue.popitem(last=False)
            if job.expired(now):
                self.stats["expired"] += 1
                waited_ms = round((now - job.arrived) * 1000)
                self._reply(job.route, error(job.request_id, "expired",
                                              f"request {job.request_id} waited {waited_ms} ms, past its deadline of "
                                              f"{job.deadline_s * 1000:g} ms; not computed: send a fresh observation"))
                continue
            self.running, self.running_since = job, now
            if job.kind == "infer":
                self.stats["computed"] += 1
            with self._work_ready:
                self._work.append(job)
                self._work_ready.notify()

    def _finish(self) -> None:
        """A reply from the worker: send it to its client; the worker is free again."""
        outcome, *frames = self._done.recv_multipart()
        if outcome == b"error":
            self.stats["errors"] += 1
        self.running = None
        self._reply(frames[:-1], frames[-1])

    def _reply(self, route: list[bytes], reply: bytes) -> None:
        """Send `reply` on the routing frames of its request (the loop thread only)."""
        self.socket.send_multipart([*route, reply])

    def _health(self, client: bytes) -> dict:
        """Liveness and load; `your_request`: the id of the asker's request this server holds (queued or running)."""
        mine = self.queue.get(client) or (self.running if self.running and self.running.client == client else None)
        busy_s = round(time.monotonic() - self.running_since, 3) if self.running else None
        return {"status": "ok", "uptime_s": round(time.monotonic() - self.started, 3), **self.stats,
                "queued": len(self.queue), "busy_s": busy_s, "your_request": mine.request_id if mine else None}

    def _metadata(self) -> dict:
        serves = {} if self.serves is None else {"serves": self.serves}
        return {**self.policy.metadata, **serves, "protocol_version": PROTOCOL_VERSION,
                "max_message_bytes": self.max_bytes}

    # --- the worker ------------------------------------------------------------------------------
    def _work_loop(self) -> None:
        """Run queued requests one at a time; the policy is touched by this thread only."""
        done = self.context.socket(zmq.PAIR)
        done.setsockopt(zmq.LINGER, 0)
        done.connect(self._done_address)
        try:
            while True:
                with self._work_ready:
                    self._work_ready.wait_for(lambda: self._work)
                    job = self._work.pop(0)
                if job is None:
                    return
                outcome, reply = self._run(job)
                try:
                    done.send_multipart([outcome, *job.route, reply], zmq.NOBLOCK)
                except zmq.Again:  # the server was closed while this ran: nobody to answer
                    pass
        finally:
            done.close(linger=0)

    def _run(self, job: _Job) -> tuple[bytes, bytes]:
        """(b"ok" | b"error", the reply); every failure becomes an error reply."""
        try:
            policy = self._session(job.client)
            if job.kind == "reset":
                policy.reset()
                return b"ok", pack("reply", job.request_id, {"status": "ok"})
            return b"ok", pack("reply", job.request_id, self._infer(policy, job))
        except ProtocolError as exc:
            return b"error", error(job.request_id, exc.code, str(exc))
        except (ValueError, KeyError, TypeError) as exc:  # the policy refused the observation
            return b"error", error(job.request_id, "bad_request", f"{type(exc).__name__}: {exc}")
        except Exception as exc:  # noqa: BLE001 - the server must keep serving
            log.exception("request %s failed", job.request_id)
            return b"error", error(job.request_id, "internal", f"{type(exc).__name__}: {exc}")

    def _session(self, client: bytes) -> Policy:
        """The client's own policy session when the policy keeps per-robot state, else the shared policy."""
        if not hasattr(self.policy, "session"):
            return self.policy
        if client not in self.sessions:
            self.sessions[client] = self.policy.session()
            while len(self.sessions) > self.max_sessions:
                self.sessions.popitem(last=False)  # a robot that comes back starts afresh, as after a reset
        self.sessions.move_to_end(client)
        return self.sessions[client]

    def _infer(self, policy: Policy, job: _Job) -> dict:
        start = time.monotonic()
        obs = job.payload.get("observation")
        if not isinstance(obs, dict) or not all(isinstance(k, str) for k in obs):
            raise ProtocolError("bad_request", "infer needs payload.observation: a map with string keys")
        actions = np.asarray(policy.predict_chunk(obs), dtype=np.float32)
        done = time.monotonic()
        if actions.ndim != 2 or not np.all(np.isfinite(actions)):
            raise ProtocolError("internal", f"the policy produced an invalid chunk of shape {actions.shape}")
        return {"actions": actions, "timing": {"queue_ms": round((start - job.arrived) * 1000, 3),
                                               "inference_ms": round((done - start) * 1000, 3)}}

    def close(self) -> None:
        """Stop the worker (after the request it is running, if any) and close the sockets."""
        with self._work_ready:
            self._work.append(None)
            self._work_ready.notify()
        self._worker.join(timeout=5)
        self._done.close(linger=0)
        self.socket.close(linger=0)
