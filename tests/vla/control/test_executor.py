"""The chunk executor on its own, with no loop and no sleeps (fast; `make mutation` runs it).

Asynchronous cases use a policy that blocks on an Event: what a test sees does not depend on timing.
"""

import threading

import numpy as np

from vla.control import ChunkExecutor


def chunk(n: int, start: float = 0.0, dtype=np.float64) -> np.ndarray:
    """n actions of one joint: start, start + 1, ..."""
    return (start + np.arange(n, dtype=np.float64))[:, None].astype(dtype)


class Gate:
    """A policy that answers only once `open` is set."""

    def __init__(self, answer):
        self.answer, self.open, self.calls = answer, threading.Event(), 0

    def __call__(self, obs):
        self.calls += 1
        if threading.current_thread() is threading.main_thread():
            raise RuntimeError("called in the control thread: the request was not asynchronous")
        self.open.wait(30)  # only a broken test waits this long
        return self.answer


def test_by_default_a_request_is_synchronous_and_only_made_when_the_queue_is_empty():
    calls = []

    def request(obs):
        calls.append((obs, threading.current_thread()))
        return chunk(3)

    ex = ChunkExecutor(request)
    assert ex.tick == 0 and ex.inferences == 0 and not ex.busy
    raw = ex.poll({"t": 0})
    assert np.array_equal(raw, chunk(3)) and raw.dtype == np.float64 and ex.inferences == 1
    ex.enqueue(raw)
    for expected in (0.0, 1.0, 2.0):
        assert ex.poll({}) is None and ex.pop()[0] == expected  # actions left: no request yet (threshold 0)
    assert ex.poll({"t": 3}) is not None and ex.inferences == 2
    assert calls == [({"t": 0}, threading.current_thread()), ({"t": 3}, threading.current_thread())]


def test_by_default_a_new_chunk_replaces_the_queue_without_blending():
    ex = ChunkExecutor(lambda obs: None)
    ex.enqueue(chunk(3, 10.0))
    ex.enqueue(chunk(3, 0.0))
    assert [ex.pop()[0] for _ in range(3)] == [0.0, 1.0, 2.0]


def test_blending_with_a_new_chunk_shorter_than_the_blend():
    ex = ChunkExecutor(lambda obs: None, blend=3)
    ex.enqueue(np.zeros((5, 1)))
    ex.enqueue(np.full((2, 1), 3.0))
    n = 2  # the overlap is as long as the shorter chunk: weights 1/3, 2/3 of the new one
    assert [ex.pop()[0] for _ in range(n)] == [1.0, 2.0] and ex.pop() is None


def test_queued_actions_are_float64_whatever_the_chunk_was():
    ex = ChunkExecutor(lambda obs: None, blend=1)
    ex.enqueue(chunk(2, 0.1, np.float32))
    ex.enqueue(chunk(2, 0.3, np.float32))
    assert all(ex.pop().dtype == np.float64 for _ in range(2))


def test_ticks_count_pops_and_skips_and_reset_starts_over():
    ex = ChunkExecutor(lambda obs: chunk(4))
    ex.enqueue(chunk(2))
    assert ex.pop() is not None and ex.pop() is not None and ex.pop() is None  # the tick passes either way
    ex.skip()
    ex.skip()
    assert ex.tick == 5
    ex._run({}, ex.tick, ex._generation)  # a finished request not yet taken into the queue
    ex.enqueue(chunk(2))
    ex.reset()
    assert ex.tick == 0 and len(ex.queue) == 0 and ex._result is None
    raw = ex.poll({})  # after a reset the next poll asks afresh
    assert np.array_equal(raw, chunk(4)) and ex.inferences == 1
    ex.enqueue(raw)
    ex.drop_queue()
    assert ex.pop() is None and ex.tick == 1


def test_a_chunk_later_than_its_length_keeps_only_its_last_action():
    ex = ChunkExecutor(lambda obs: chunk(3))
    ex._run({}, 0, ex._generation)
    for _ in range(5):
        ex.skip()
    assert ex._merge().tolist() == [[2.0]]
    ex._run({}, 5, ex._generation)
    ex.skip()
    assert ex._merge().tolist() == [[1.0], [2.0]]


def test_a_policy_that_answers_with_something_that_is_not_numbers_is_an_error_not_a_chunk():
    ex = ChunkExecutor(lambda obs: [["left", "up"]])
    assert ex.poll({}) is None and isinstance(ex.last_error, ValueError)
    ex.request = lambda obs: chunk(2)
    assert ex.poll({}) is not None and ex.last_error is None


def test_an_asynchronous_request_runs_in_a_daemon_thread_and_wait_honours_its_timeout():
    gate = Gate(chunk(3))
    ex = ChunkExecutor(gate, asynchronous=True)
    assert ex.poll({}) is None and ex.busy and ex.inferences == 1
    assert ex._pending.daemon  # a policy call that never returns must not keep the process alive
    assert ex.wait(0.01) is False  # still running: wait gives up instead of blocking
    assert ex.poll({}) is None and gate.calls == 1  # no second request while one is in flight
    gate.open.set()
    assert ex.wait(30) is True and not ex.busy
    assert np.array_equal(ex.poll({}), chunk(3))


def test_dropping_the_plan_discards_the_chunk_in_flight_and_asks_afresh():
    gate = Gate(chunk(4))
    ex = ChunkExecutor(gate, asynchronous=True)
    assert ex.poll({}) is None and ex.busy
    ex.drop_queue(in_flight=True)  # e.g. a new instruction while the old one's chunk is computed
    assert ex.poll({}) is None and gate.calls == 1  # still one request at a time: it waits for that one
    gate.open.set()
    assert ex.wait(30)
    assert ex.poll({}) is None and ex.discarded == 1  # it arrived for the old plan: never queued
    assert gate.calls == 1 and not ex.queue
    assert ex.wait(30) and gate.calls == 1
    assert np.array_equal(ex.poll({}), chunk(4)) and gate.calls == 2  # asked afresh, for the new plan


def test_dropping_the_plan_discards_a_chunk_that_arrived_but_was_not_taken_yet():
    gate = Gate(chunk(4))
    ex = ChunkExecutor(gate, asynchronous=True)
    ex.poll({})
    gate.open.set()
    assert ex.wait(30)  # arrived; the next poll would take it
    ex.drop_queue(in_flight=True)
    assert ex.discarded == 1
    gate.open.clear()
    ex.poll({})
    assert gate.calls == 2  # asked afresh
    gate.open.set()
    assert ex.wait(30)
    ex.drop_queue(in_flight=True)  # and dropped again before it was taken
    assert ex.discarded == 2 and not ex.queue


def test_dropping_only_the_queue_keeps_the_chunk_in_flight():
    gate = Gate(chunk(4))
    ex = ChunkExecutor(gate, asynchronous=True)
    ex.poll({})
    ex.drop_queue()  # an unsafe queued chunk, say: what is being computed is still wanted
    gate.open.set()
    assert ex.wait(30)
    assert np.array_equal(ex.poll({}), chunk(4)) and gate.calls == 1 and ex.discarded == 0


def test_reset_discards_the_previous_episodes_chunk_in_flight():
    gate = Gate(chunk(4))
    ex = ChunkExecutor(gate, asynchronous=True)
    ex.poll({})
    ex.pop()
    ex.reset()  # a new episode starts while the old one's chunk is computed
    assert ex.tick == 0
    gate.open.set()
    assert ex.wait(30)
    assert ex.poll({}) is None and ex.discarded == 1


def test_every_drop_of_the_plan_invalidates_the_request_in_flight_then():
    gate = Gate(chunk(4))
    gate.open.set()
    ex = ChunkExecutor(gate, asynchronous=True)
    for n in (1, 2):  # the second drop must invalidate the second request as the first did the first
        gate.open.clear()
        ex.poll({})
        assert ex.busy and gate.calls == n
        ex.drop_queue(in_flight=True)
        gate.open.set()
        assert ex.wait(30)
        assert ex.poll({}) is None and ex.discarded == n
    ex.drop_queue(in_flight=True)  # with nothing in flight: nothing to discard
    assert ex.discarded == 2
    assert ex.wait(30) and np.array_equal(ex.poll({}), chunk(4)) and gate.calls == 3
