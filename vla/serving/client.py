"""ZeroMQ policy client with timeouts and reconnection (the Lazy Pirate pattern), and a remote Policy."""

from __future__ import annotations

import itertools
import time
from pathlib import Path
from typing import Any

import numpy as np
import zmq

from vla.serving.codec import ProtocolError, pack, unpack

DEFAULT_TIMEOUT_S = 2.0


class ServerError(RuntimeError):
    """The server answered with an error reply."""

    def __init__(self, code: str, message: str):
        super().__init__(f"{code}: {message}")
        self.code = code


class PolicyClient:
    def __init__(self, connect: str, timeout_s: float = DEFAULT_TIMEOUT_S, retries: int = 1,
                 server_key: str | Path | None = None, context: zmq.Context | None = None,
                 max_bytes: int = 64 * 2**20):
        self.connect = connect
        self.timeout_ms = int(timeout_s * 1000)
        self.retries = retries
        self.max_bytes = max_bytes
        self.context = context or zmq.Context.instance()
        self._server_key = _load_public_key(server_key) if server_key else None
        self._ids = itertools.count(1)
        self.socket: zmq.Socket | None = None
        self._open()

    def _open(self) -> None:
        if self.socket is not None:
            self.socket.close(linger=0)
        self.socket = self.context.socket(zmq.REQ)
        self.socket.setsockopt(zmq.LINGER, 0)
        if self._server_key is not None:
            public, secret = zmq.curve_keypair()
            self.socket.curve_serverkey = self._server_key
            self.socket.curve_publickey, self.socket.curve_secretkey = public, secret
        self.socket.connect(self.connect)

    def send_raw(self, message: bytes) -> dict[str, Any]:
        """Send bytes as they are and return the decoded reply envelope (for tests and tools)."""
        for attempt in range(self.retries + 1):
            self.socket.send(message)
            if self.socket.poll(self.timeout_ms, zmq.POLLIN):
                return unpack(self.socket.recv(), self.max_bytes)
            self._open()  # a REQ socket without its reply is stuck: start afresh
            if attempt < self.retries:
                time.sleep(0.05 * (attempt + 1))
        raise TimeoutError(f"no answer from {self.connect} within {self.timeout_ms} ms ({self.retries + 1} tries)")

    def request(self, kind: str, payload: dict | None = None) -> dict[str, Any]:
        request_id = next(self._ids)
        reply = self.send_raw(pack(kind, request_id, payload))
        if reply["kind"] == "error":
            raise ServerError(reply["payload"].get("code", "?"), reply["payload"].get("message", ""))
        if reply["id"] != request_id:
            raise ProtocolError("mismatch", f"reply to request {reply['id']}, expected {request_id}")
        return reply["payload"]

    def health(self) -> dict[str, Any]:
        return self.request("health")

    def metadata(self) -> dict[str, Any]:
        return self.request("metadata")

    def reset(self) -> None:
        self.request("reset")

    def infer(self, obs: dict[str, Any]) -> tuple[np.ndarray, dict[str, float]]:
        reply = self.request("infer", {"observation": obs})
        return np.asarray(reply["actions"], dtype=np.float32), reply.get("timing", {})

    def close(self) -> None:
        if self.socket is not None:
            self.socket.close(linger=0)
            self.socket = None


class RemotePolicy:
    """The Policy contract over the wire: what the control loop and ROS nodes use."""

    def __init__(self, client: PolicyClient):
        self.client = client
        self.metadata = client.metadata()
        self.last_timing: dict[str, float] = {}

    def reset(self) -> None:
        self.client.reset()

    def predict_chunk(self, obs: dict[str, Any]) -> np.ndarray:
        actions, self.last_timing = self.client.infer(obs)
        return actions


def _load_public_key(path: str | Path) -> bytes:
    import zmq.auth

    path = Path(path)
    if path.is_dir():
        path = path / "server.key"
    if not path.is_file():
        raise FileNotFoundError(f"server public key {path} not found; copy server.key from `vla keys`")
    public, _ = zmq.auth.load_certificate(str(path))
    return public
