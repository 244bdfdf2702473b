"""Helpers shared by tests/vla and tests/ros: the repository root and a policy server in a thread."""

from __future__ import annotations

import threading
import time
from pathlib import Path

from vla.bench.launch_graph import free_address  # noqa: F401 - the tests take it from here
from vla.serving.server import PolicyServer

REPO = Path(__file__).resolve().parents[1]
SHIPPED_POLICY = REPO / "policies" / "tiny_sim_single"
SHIPPED_PLANNER = REPO / "policies" / "tiny_sim_planner"


def median_health_latency(client, samples: int = 5) -> tuple[float, dict]:
    """The median seconds of `samples` health requests, and the last answer. The median, so that one
    scheduler hiccup on a loaded machine does not count; were health queued behind an inference,
    every sample would wait for it."""
    latencies, health = [], {}
    for _ in range(samples):
        started = time.perf_counter()
        health = client.health()
        latencies.append(time.perf_counter() - started)
    return sorted(latencies)[samples // 2], health




class ServerThread:
    """A PolicyServer serving `policy` in a daemon thread of this process, on an OS-assigned loopback
    port unless told otherwise; `close()` it, or use it as a context manager."""

    def __init__(self, policy, address: str = "tcp://127.0.0.1:0", poll_ms: int = 20, **server_kw):
        self.server = PolicyServer(policy, address, **server_kw)
        self.address = self.server.address
        self._stop = threading.Event()
        self.thread = threading.Thread(target=self.server.serve, kwargs={"stop": self._stop.is_set, "poll_ms": poll_ms},
                                       daemon=True)
        self.thread.start()

    def close(self) -> None:
        self._stop.set()
        self.thread.join(timeout=5)
        self.server.close()

    def __enter__(self) -> ServerThread:
        return self

    def __exit__(self, *exc) -> None:
        self.close()
