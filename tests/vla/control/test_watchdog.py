"""The watchdog with an injected clock: boundaries, defaults and messages (fast; `make mutation` runs it)."""

from vla.control import Watchdog


class Clock:
    def __init__(self):
        self.now = 0.0

    def __call__(self) -> float:
        return self.now


def test_default_timeouts_and_their_boundaries():
    clock = Clock()
    w = Watchdog(clock=clock)
    assert w.estopped is False
    clock.now = 0.5  # exactly the default observation timeout: still fresh
    assert w.check_inputs({"image": 0.0}) is None
    clock.now = 0.5000001
    assert w.check_inputs({"image": 0.0}) == "no fresh image for 0.5 s"
    clock.now = 1.0  # exactly the default inference timeout: not yet silent
    assert w.check_policy() is None
    clock.now = 1.0000001
    assert w.check_policy() == "no answer from the policy for 1.0 s"
    w.inference_ok()
    assert w.check_policy() is None


def test_every_stale_input_is_named_in_order():
    clock = Clock()
    w = Watchdog(observation_timeout_s=0.2, clock=clock)
    clock.now = 1.0
    stamps = {"joint_states": 0.5, "image.wrist": 0.95, "image.top": 0.1}
    assert w.check_inputs(stamps) == "no fresh image.top, joint_states for 0.2 s"
    assert w.check_inputs({}) is None


def test_estop_latches_until_reset():
    clock = Clock()
    w = Watchdog(clock=clock)
    w.estop()
    assert w.estopped is True and w.check_inputs({}) == "e-stop engaged"
    clock.now = 100.0
    assert w.check_inputs({"image": 100.0}) == "e-stop engaged"
    w.reset_estop()
    assert w.estopped is False and w.check_inputs({"image": 100.0}) is None
