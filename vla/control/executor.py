"""Chunk executor: one action per control tick, with asynchronous refill and a cross-faded hand-over.

When fewer than `refill_threshold` actions are left, the next chunk is requested with the
latest observation, in a background thread, while the arm keeps executing the queue (as
SmolVLA's asynchronous inference does). A chunk that arrives `n` ticks after its request
starts at its action `n` (the others are already in the past). The first `blend` actions of
the new chunk are cross-faded with what was left of the old one, so the hand-over has no step.

A plan can become invalid with a request still in flight (a new instruction, an e-stop, a new
episode): `drop_queue(in_flight=True)` and `reset()` also discard that request's
chunk when it arrives (it was computed from an observation of the old plan), and the next poll asks
afresh. Without it, the last action of a chunk planned before an e-stop was executed after it.
"""

from __future__ import annotations

import threading
from collections import deque
from collections.abc import Callable

import numpy as np


class ChunkExecutor:
    def __init__(self, request: Callable[[dict], np.ndarray], refill_threshold: int = 0, blend: int = 0,
                 asynchronous: bool = False):
        self.request = request
        self.refill_threshold = refill_threshold
        self.blend = blend
        self.asynchronous = asynchronous
        self.queue: deque[np.ndarray] = deque()
        self.tick = 0
        self._pending: threading.Thread | None = None
        self._result: tuple[int, int, np.ndarray | None, Exception | None] | None = None
        self._generation = 0  # bumped when the plan in flight becomes invalid
        self.discarded = 0  # chunks that arrived for a plan already dropped
        self.inferences = 0
        self.last_error: Exception | None = None

    def reset(self) -> None:
        """A new episode: nothing queued, the tick count from 0, and a request in flight discarded."""
        self.drop_queue(in_flight=True)
        self.tick = 0

    def drop_queue(self, in_flight: bool = False) -> None:
        """Forget queued actions (e.g. the chunk was unsafe). `in_flight`: the plan itself is invalid
        (a new instruction, an e-stop): the chunk of a request in flight is discarded
        too when it arrives; the executor still waits for it before asking again (one at a time)."""
        self.queue.clear()
        if in_flight:
            self._generation += 1
            if self._result is not None:  # arrived but not merged yet
                self._result, self._pending = None, None
                self.discarded += 1

    def _run(self, obs: dict, tick: int, generation: int) -> None:
        try:
            self._result = (generation, tick, np.asarray(self.request(obs), dtype=np.float64), None)
        except Exception as exc:  # noqa: BLE001 - reported to the loop, which holds the arm
            self._result = (generation, tick, None, exc)

    def _start(self, obs: dict) -> None:
        self.inferences += 1
        if self.asynchronous:
            self._pending = threading.Thread(target=self._run, args=(obs, self.tick, self._generation), daemon=True)
            self._pending.start()
        else:
            self._run(obs, self.tick, self._generation)

    def _merge(self) -> np.ndarray | None:
        """Take a finished request into the queue; returns the raw chunk (for the safety filter) or None."""
        if self._result is None:
            return None
        generation, requested_at, chunk, error = self._result
        self._result, self._pending = None, None
        if generation != self._generation:  # asked for a plan dropped since: the next poll asks afresh
            self.discarded += 1
            return None
        if error is not None:
            self.last_error = error
            return None
        self.last_error = None
        return chunk[min(self.tick - requested_at, len(chunk) - 1):]

    def enqueue(self, chunk: np.ndarray) -> None:
        """Put an accepted chunk in the queue, cross-fading its start with the old queue."""
        old = list(self.queue)
        new = [np.array(a, dtype=np.float64) for a in chunk]
        n = min(self.blend, len(old), len(new))
        for i in range(n):
            w = (i + 1) / (n + 1)  # weight of the new chunk grows along the overlap
            new[i] = (1 - w) * old[i] + w * new[i]
        self.queue = deque(new)

    @property
    def busy(self) -> bool:
        return self._pending is not None and self._pending.is_alive()

    def wait(self, timeout: float | None = None) -> bool:
        """Block until the request in flight, if any, has finished; False if it is still running.

        The loop never calls this (it holds instead); lockstep tests and shutdown do."""
        pending = self._pending
        if pending is not None:
            pending.join(timeout)
        return not self.busy

    def poll(self, obs: dict) -> np.ndarray | None:
        """Start a request if the queue runs low; return a newly arrived raw chunk, if any."""
        if not self.busy and len(self.queue) <= self.refill_threshold and self._result is None:
            self._start(obs)
        # Never wait here: with nothing queued while a request is in flight the loop holds the arm.
        return self._merge()

    def pop(self) -> np.ndarray | None:
        """The action for this tick (None when nothing is queued); the tick passes either way."""
        self.tick += 1
        return self.queue.popleft() if self.queue else None

    def skip(self) -> None:
        """A tick passed without taking an action (the loop held): a chunk in flight is that much later."""
        self.tick += 1
