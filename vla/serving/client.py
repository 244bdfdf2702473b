"""ZeroMQ policy client, and the Policy contract over the wire (`RemotePolicy`).

One request at a time per client (a lock), on a DEALER socket. A request is never re-sent
while the server still works on it: when no reply has come within `timeout_s` the client asks
the server's `health` (answered at once, also during an inference) whether it still holds the
request, and goes on waiting while it does. Only a server that is silent for `timeout_s`, or
no longer holds the request (it restarted), ends the wait: the socket is then opened afresh
(the Lazy Pirate pattern), so no stale request or reply survives, and TimeoutError is raised.
Re-sending on every timeout is what built the backlog of issue 19: inference took longer than
the timeout, and the server computed every copy in order.
"""

from __future__ import annotations

import itertools
import threading
import time
from pathlib import Path
from typing import Any

import numpy as np
import zmq
import zmq.auth

from vla.serving.codec import pack, unpack

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
        """`timeout_s`: how long the server may stay silent before it counts as lost (not how long an
        inference may take). `retries`: extra tries of health/metadata/reset; `infer` is never retried."""
        self.connect = connect
        self.timeout_ms = int(timeout_s * 1000)
        self.retries = retries
        self.max_bytes = max_bytes
        self.context = context or zmq.Context.instance()
        self._server_key = _load_public_key(server_key) if server_key else None
        self._ids = itertools.count(1)
        self._lock = threading.Lock()  # one request at a time; the socket is used by one thread at a time
        self.socket: zmq.Socket | None = None
        self._open()

    def _open(self) -> None:
        if self.socket is not None:
            self.socket.close(linger=0)
        self.socket = self.context.socket(zmq.DEALER)
        self.socket.setsockopt(zmq.LINGER, 0)
        if self._server_key is not None:
            public, secret = zmq.curve_keypair()
            self.socket.curve_serverkey = self._server_key
            self.socket.curve_publickey, self.socket.curve_secretkey = public, secret
        self.socket.connect(self.connect)

    def _send(self, message: bytes) -> None:
        self.socket.send_multipart([b"", message])  # the empty delimiter a REQ socket would add

    def _receive(self) -> dict[str, Any] | None:
        """The next reply envelope, or None when nothing came within the timeout."""
        if not self.socket.poll(self.timeout_ms, zmq.POLLIN):
            return None
        return unpack(self.socket.recv_multipart()[-1], self.max_bytes)

    def send_raw(self, message: bytes) -> dict[str, Any]:
        """Send bytes as they are and return the next reply envelope, whatever its id (for tests and tools)."""
        with self._lock:
            for attempt in range(self.retries + 1):
                self._send(message)
                reply = self._receive()
                if reply is not None:
                    return reply
                self._open()  # drop what is still queued for a server that does not answer
                if attempt < self.retries:
                    time.sleep(0.05 * (attempt + 1))
        raise TimeoutError(f"no answer from {self.connect} within {self.timeout_ms} ms ({self.retries + 1} tries)")

    def _await(self, request_id: int, patient: bool) -> dict[str, Any]:
        """The reply to `request_id`; raises TimeoutError when the server is silent for the timeout.
        `patient` (work the server queues: infer, reset): wait as long as the server, asked with `health`,
        still holds the request; raise when it no longer does."""
        probe = None
        while True:
            reply = self._receive()
            if reply is None:
                if probe is not None or not patient:
                    raise TimeoutError(f"no answer from {self.connect} within {self.timeout_ms} ms")
                probe = next(self._ids)  # slow, or gone? a live server answers health at once
                self._send(pack("health", probe))
            elif reply["id"] == request_id or (reply["kind"] == "error" and reply["id"] == -1):
                return reply  # id -1: an error to a message the server could not read, necessarily ours
            elif reply["id"] == probe:
                if reply["kind"] != "reply" or reply["payload"].get("your_request") != request_id:
                    raise TimeoutError(f"{self.connect} no longer holds request {request_id} (did it restart?)")
                probe = None  # alive and still on it: keep waiting
            # else: a reply to a request given up on earlier: ignore it

    def request(self, kind: str, payload: dict | None = None, deadline_s: float | None = None) -> dict[str, Any]:
        """Send one request and wait for its reply (see the module docstring); raises ServerError for an
        error reply. `deadline_s`: how long the request may wait in the server before its work starts."""
        tries = 1 if kind == "infer" else self.retries + 1  # an observation is worth sending once only
        deadline_ms = None if deadline_s is None else deadline_s * 1000
        with self._lock:
            for attempt in range(tries):
                request_id = next(self._ids)
                self._send(pack(kind, request_id, payload, deadline_ms))
                try:
                    reply = self._await(request_id, patient=kind in ("infer", "reset"))
                    break
                except TimeoutError as exc:
                    self._open()
                    if attempt + 1 == tries:
                        raise TimeoutError(f"{exc} ({tries} {'try' if tries == 1 else 'tries'})") from None
                    time.sleep(0.05 * (attempt + 1))
        if reply["kind"] == "error":
            raise ServerError(reply["payload"].get("code", "?"), reply["payload"].get("message", ""))
        return reply["payload"]

    def health(self) -> dict[str, Any]:
        return self.request("health")

    def metadata(self) -> dict[str, Any]:
        return self.request("metadata")

    def reset(self) -> None:
        self.request("reset")

    def infer(self, obs: dict[str, Any], deadline_s: float | None = None) -> tuple[np.ndarray, dict[str, float]]:
        reply = self.request("infer", {"observation": obs}, deadline_s)
        return np.asarray(reply["actions"], dtype=np.float32), reply.get("timing", {})

    def close(self) -> None:
        with self._lock:
            if self.socket is not None:
                self.socket.close(linger=0)
                self.socket = None


class RemotePolicy:
    """The Policy contract over the wire: what the control loop and ROS nodes use.

    `deadline_s`: how long each observation may wait in a busy server before the server drops it
    (error "expired") rather than compute an action chunk from a stale observation."""

    def __init__(self, client: PolicyClient, deadline_s: float | None = None):
        self.client = client
        self.deadline_s = deadline_s
        self.metadata = client.metadata()
        self.last_timing: dict[str, float] = {}

    def reset(self) -> None:
        self.client.reset()

    def predict_chunk(self, obs: dict[str, Any]) -> np.ndarray:
        actions, self.last_timing = self.client.infer(obs, self.deadline_s)
        return actions


def _load_public_key(path: str | Path) -> bytes:
    path = Path(path)
    if path.is_dir():
        path = path / "server.key"
    if not path.is_file():
        raise FileNotFoundError(f"server public key {path} not found; copy server.key from `vla keys`")
    public, _ = zmq.auth.load_certificate(str(path))
    return public
