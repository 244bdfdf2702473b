"""Watchdog: stale inputs, a silent policy server or an e-stop mean hold the current position."""

from __future__ import annotations

import time


class Watchdog:
    def __init__(self, observation_timeout_s: float = 0.5, inference_timeout_s: float = 1.0,
                 clock=time.monotonic):
        self.observation_timeout_s = observation_timeout_s
        self.inference_timeout_s = inference_timeout_s
        self.clock = clock
        self.estopped = False
        self.last_inference_ok = clock()

    def estop(self) -> None:
        """Latch: hold, and refuse new chunks until `reset_estop`."""
        self.estopped = True

    def reset_estop(self) -> None:
        self.estopped = False

    def inference_ok(self) -> None:
        self.last_inference_ok = self.clock()

    def check_inputs(self, observation_stamps: dict[str, float]) -> str | None:
        """Reasons not even to ask the policy: e-stop, stale camera or joint states."""
        if self.estopped:
            return "e-stop engaged"
        now = self.clock()
        stale = [k for k, t in observation_stamps.items() if now - t > self.observation_timeout_s]
        if stale:
            return f"no fresh {', '.join(sorted(stale))} for {self.observation_timeout_s} s"
        return None

    def check_policy(self) -> str | None:
        """The policy has not delivered a chunk for too long (the loop keeps asking meanwhile)."""
        if self.clock() - self.last_inference_ok > self.inference_timeout_s:
            return f"no answer from the policy for {self.inference_timeout_s} s"
        return None
