import threading

import numpy as np
import pytest

from vla.control import ChunkExecutor, ControlLoop, SafetyFilter, Watchdog
from vla.robot import load_robot_config

ROBOT = load_robot_config("panda")
HOME = ROBOT.home_array.astype(np.float64)


def chunk_from(start, deltas):
    return np.array([start + d for d in deltas], dtype=np.float32)


# --- safety filter -------------------------------------------------------------------------------------
def test_non_finite_and_misshapen_chunks_are_rejected():
    f = SafetyFilter(ROBOT)
    for bad in (np.full((3, 8), np.nan), np.vstack([HOME, HOME + np.inf]), np.zeros((3, 7)), np.zeros((0, 8))):
        safe, report = f.check(bad, HOME)
        assert safe is None and not report.accepted
    assert f.summary()["chunks_rejected"] == 4
    assert f.counts["non_finite"] == 24 + 8 and f.counts["shape"] == 2


def test_position_limits_clamped_or_rejected_by_mode():
    state = HOME.copy()
    state[3] = -0.1  # joint4 close to its upper limit, -0.0698
    chunk = chunk_from(state, [np.zeros(8)] * 2)
    chunk[1, 3] = -0.05
    clamp = SafetyFilter(ROBOT, "clamp")
    safe, report = clamp.check(chunk, state)
    assert report.accepted and report.interventions["position"] == 1
    assert safe[1, 3] == pytest.approx(ROBOT.joints[3].upper, abs=1e-6)
    reject = SafetyFilter(ROBOT, "reject")
    safe, report = reject.check(chunk, state)
    assert safe is None and "joint limits" in report.reason


def test_steps_are_rate_limited_to_the_velocity_limit():
    f = SafetyFilter(ROBOT)
    step = ROBOT.max_velocity / ROBOT.control_rate_hz
    chunk = chunk_from(HOME, [np.full(8, 0.1) * k for k in range(1, 4)])
    chunk[:, -1] = HOME[-1]  # keep the gripper inside its 4 cm range
    safe, report = f.check(chunk, HOME)
    assert report.accepted
    assert np.all(np.abs(np.diff(np.vstack([HOME, safe]), axis=0)) <= step + 1e-6)
    assert np.all(np.diff(np.vstack([HOME, safe]), axis=0)[:, :7] > 0)  # still moving the same way


def test_a_chunk_for_another_state_is_rejected_or_approached_at_the_velocity_limit():
    far = chunk_from(HOME, [np.zeros(8)])
    far[0, 0] += 1.0
    safe, report = SafetyFilter(ROBOT, "reject").check(far, HOME)
    assert safe is None and report.interventions == {"start_jump": 1} and "joint1" in report.reason
    safe, report = SafetyFilter(ROBOT, "clamp").check(far, HOME)
    assert report.accepted and report.interventions == {"start_jump": 1, "step": 1}
    assert safe[0, 0] == pytest.approx(HOME[0] + ROBOT.joints[0].max_velocity / ROBOT.control_rate_hz)


# --- executor ------------------------------------------------------------------------------------------
class Lockstep:
    """A policy whose answer to the request made at tick r arrives exactly at tick r + latency.

    The test loop calls `deliver(t, executor)` before each poll: it releases the request made `latency`
    ticks ago and waits for it to finish. No sleeps, no wall-clock bounds: the result does not depend on
    how busy the machine is."""

    def __init__(self, make_chunk, latency: int):
        self.make_chunk, self.latency = make_chunk, latency
        self.gates: dict[int, threading.Event] = {}
        self.asked: list[int] = []  # ticks at which the executor asked

    def _gate(self, tick: int) -> threading.Event:
        return self.gates.setdefault(tick, threading.Event())  # atomic: the worker and the test may both ask

    def __call__(self, obs):
        self._gate(obs["t"]).wait(30)  # only a broken test waits this long; it then fails on the values
        return self.make_chunk(obs)

    def poll(self, executor: ChunkExecutor, obs: dict, t: int):
        """`executor.poll`, after delivering what is due at tick `t`; notes when a request starts."""
        if t - self.latency in self.asked:
            self._gate(t - self.latency).set()
            assert executor.wait(30), "the policy thread did not finish"
        before = executor.inferences
        raw = executor.poll(obs)
        if executor.inferences > before:
            self.asked.append(t)
        return raw


def ramp_from_request_tick(obs):
    """Action k of a chunk asked at tick r is the value r + k: the value says which tick it is for."""
    return np.arange(obs["t"], obs["t"] + 10, dtype=np.float64)[:, None] * np.ones(2)


@pytest.mark.parametrize("latency", [1, 2, 3])
def test_async_refill_skips_actions_that_are_already_past_and_cross_fades(latency):
    policy = Lockstep(ramp_from_request_tick, latency)
    ex = ChunkExecutor(policy, refill_threshold=4, blend=2, asynchronous=True)
    sent = []
    for t in range(40):
        chunk = policy.poll(ex, {"t": t}, t)
        if chunk is not None:
            ex.enqueue(chunk)
        action = ex.pop()
        sent.append(np.nan if action is None else action[0])
    sent = np.array(sent)
    # Nothing until the first chunk arrives, then the value of each tick, exactly: a late chunk starts at
    # the action for the current tick, so the cross-fade blends equal values. Skipping one action too few
    # or too many would show as a step of 1 +- 1/3 at every hand-over.
    assert np.all(np.isnan(sent[:latency]))
    assert np.array_equal(sent[latency:], np.arange(latency, 40))
    assert len(policy.asked) >= 6 and policy.asked[0] == 0


def test_cross_fade_smooths_a_hand_over():
    old = np.zeros((6, 1))
    new = np.ones((6, 1))
    for blend, expected_max_step in ((0, 1.0), (3, 0.25)):
        ex = ChunkExecutor(lambda o: None, blend=blend)
        ex.enqueue(old)
        ex.pop()
        ex.enqueue(new)
        seq = np.array([0.0] + [ex.pop()[0] for _ in range(5)])
        assert np.max(np.abs(np.diff(seq))) == pytest.approx(expected_max_step)


# --- loop and watchdog ---------------------------------------------------------------------------------
class ScriptedPolicy:
    """A real (if simple) policy: move joint1 slowly; switchable faults for the tests."""

    metadata = {"name": "ramp"}

    def __init__(self):
        self.fault = None

    def reset(self):
        pass

    def predict_chunk(self, obs):
        if self.fault == "raise":
            raise ConnectionError("server down")
        chunk = chunk_from(obs["observation.state"], [np.r_[0.02 * k, np.zeros(7)] for k in range(1, 6)])
        if self.fault == "nan":
            chunk[2, 4] = np.nan
        return chunk


def test_nan_from_the_policy_never_reaches_the_actuator():
    policy = ScriptedPolicy()
    policy.fault = "nan"
    loop = ControlLoop(policy, SafetyFilter(ROBOT))
    for _ in range(5):
        status = loop.step({"observation.state": HOME.astype(np.float32)})
        assert status.holding and status.rejected and np.all(np.isfinite(status.action))
        assert np.allclose(status.action, HOME)


def test_watchdog_holds_on_stale_inputs_policy_failure_and_estop_then_resumes():
    now = [0.0]
    watchdog = Watchdog(observation_timeout_s=0.2, inference_timeout_s=0.5, clock=lambda: now[0])
    policy = ScriptedPolicy()
    loop = ControlLoop(policy, SafetyFilter(ROBOT), watchdog=watchdog)
    obs = {"observation.state": HOME.astype(np.float32)}
    status = loop.step(obs, {"image": 0.0, "joint_states": 0.0})
    assert not status.holding and status.action[0] > HOME[0]
    now[0] = 0.3  # the camera went quiet
    status = loop.step(obs, {"image": 0.0, "joint_states": 0.3})
    assert status.holding and "no fresh image" in status.reason
    policy.fault = "raise"
    status = loop.step(obs, {"image": 0.3, "joint_states": 0.3})
    assert status.holding and "server down" in status.reason
    policy.fault = None
    status = loop.step(obs, {"image": 0.3, "joint_states": 0.3})
    assert not status.holding  # the policy answers again: moving on
    watchdog.estop()
    for _ in range(3):
        assert loop.step(obs, {"image": 0.3, "joint_states": 0.3}).reason == "e-stop engaged"
    watchdog.reset_estop()
    assert not loop.step(obs, {"image": 0.3, "joint_states": 0.3}).holding


class GatedRamp(ScriptedPolicy):
    """Answers only once released, with joint1 at HOME + 0.01 k for action k: the value says which action
    of the chunk the loop sent."""

    def __init__(self):
        super().__init__()
        self.release = threading.Event()

    def predict_chunk(self, obs):
        self.release.wait(30)  # only a broken test waits this long; it then fails on the values
        return chunk_from(HOME, [np.r_[0.01 * k, np.zeros(7)] for k in range(20)])


@pytest.mark.parametrize("hold", ["policy silent", "camera stale"])
def test_a_chunk_arriving_after_a_watchdog_hold_starts_at_the_action_for_the_current_tick(hold):
    """Every tick counts, held or not: a chunk asked for at tick 0 and delivered at tick 8 starts at its
    action 8, whatever the loop did in between (waited, or held for the watchdog)."""
    now = [0.0]
    watchdog = Watchdog(observation_timeout_s=0.25, inference_timeout_s=0.25, clock=lambda: now[0])
    policy = GatedRamp()
    loop = ControlLoop(policy, SafetyFilter(ROBOT), asynchronous=True, watchdog=watchdog)
    obs = {"observation.state": HOME.astype(np.float32)}
    reasons = []
    for t in range(8):  # a tick every 0.1 s of simulated time
        now[0] = 0.1 * t
        camera = 0.0 if hold == "camera stale" else now[0]  # the camera goes quiet after t = 0
        reasons.append(loop.step(obs, {"image": camera, "joint_states": now[0]}).reason)
    assert reasons[:3] == ["waiting for the policy"] * 3
    words = "no answer from the policy" if hold == "policy silent" else "no fresh image"
    assert all(words in r for r in reasons[3:]), reasons
    policy.release.set()
    assert loop.executor.wait(30)
    now[0] = 0.8
    status = loop.step(obs, {"image": now[0], "joint_states": now[0]})
    assert not status.holding and status.new_chunk
    assert status.action[0] == pytest.approx(HOME[0] + 0.01 * 8, abs=1e-6)  # action 8, not 3


def test_a_chunk_asked_for_before_an_estop_is_never_executed_after_it():
    """The chunk in flight when the e-stop came was planned for a world the operator stopped: after the
    reset the loop asks afresh from the current observation instead of executing what it planned."""
    watchdog = Watchdog(observation_timeout_s=10.0, inference_timeout_s=10.0, clock=lambda: 0.0)
    policy = GatedRamp()
    asked = []
    policy.predict_chunk = lambda obs, ramp=policy.predict_chunk: asked.append(obs["observation.state"][0]) or ramp(obs)
    loop = ControlLoop(policy, SafetyFilter(ROBOT), asynchronous=True, watchdog=watchdog)
    before = {"observation.state": HOME.astype(np.float32)}
    assert loop.step(before, {}).reason == "waiting for the policy"  # a request in flight
    watchdog.estop()
    for _ in range(3):
        assert loop.step(before, {}).reason == "e-stop engaged"
    policy.release.set()
    assert loop.executor.wait(30)  # the old chunk arrives during the e-stop
    watchdog.reset_estop()
    after = {"observation.state": (HOME + np.r_[0.05, np.zeros(7)]).astype(np.float32)}  # someone moved the arm
    status = loop.step(after, {})
    assert status.holding and not status.new_chunk and loop.executor.discarded == 1
    assert loop.executor.wait(30)
    status = loop.step(after, {})
    assert status.new_chunk and not status.holding
    assert asked == pytest.approx([HOME[0], HOME[0] + 0.05])  # the second plan is from the new observation


def test_async_loop_holds_while_waiting_instead_of_blocking():
    release = threading.Event()

    class Blocking(ScriptedPolicy):
        def predict_chunk(self, obs):
            release.wait(30)
            return super().predict_chunk(obs)

    loop = ControlLoop(Blocking(), SafetyFilter(ROBOT), asynchronous=True)
    obs = {"observation.state": HOME.astype(np.float32)}
    # Had the step waited for the policy, it would have come back with the chunk (after 30 s), not holding.
    status = loop.step(obs)
    assert status.holding and status.reason == "waiting for the policy"
    release.set()
    assert loop.executor.wait(30)
    assert not loop.step(obs).holding


# --- the publisher's checks: hold targets and single commands --------------------------------------------
STEP = ROBOT.max_velocity.astype(np.float64) / ROBOT.control_rate_hz


def test_check_command_accepts_a_command_within_limits_and_one_velocity_step():
    f = SafetyFilter(ROBOT)
    assert f.check_command(HOME, HOME).accepted
    assert f.check_command((HOME + STEP * np.r_[np.ones(7), -1]).astype(np.float32), HOME).accepted  # float32 rounding


@pytest.mark.parametrize("kind, command, previous, words", [
    ("shape", HOME[:7], HOME, "shape (7,)"),
    ("shape", None, HOME, "shape (0,)"),
    ("non_finite", np.where(np.arange(8) == 2, np.nan, HOME), HOME, "joint3=nan"),
    ("non_finite", np.where(np.arange(8) == 0, -np.inf, HOME), HOME, "joint1=-inf"),
    ("position", np.where(np.arange(8) == 3, 0.5, HOME), HOME, "joint4=0.5000"),
    ("position", np.where(np.arange(8) == 7, 0.05, HOME), HOME, "finger_joint1"),
    ("step", HOME + np.where(np.arange(8) == 0, 1.5 * STEP, 0), HOME, "joint1 by 0.326"),
    ("step", HOME, np.full(8, np.nan), "velocity limit"),
    ("no_reference", HOME, None, "no reference"),
])
def test_check_command_refuses_each_violation_and_says_which_joint(kind, command, previous, words):
    report = SafetyFilter(ROBOT).check_command(command, previous)
    assert not report.accepted and kind in report.interventions and words in report.reason, report


def test_a_hold_target_is_never_a_non_finite_or_out_of_limits_state():
    f = SafetyFilter(ROBOT)
    state, problem = f.hold_state(HOME.astype(np.float32))
    assert problem == "" and np.allclose(state, HOME)
    nan, inf, far = HOME.copy(), HOME.copy(), HOME.copy()
    nan[2], inf[5], far[3] = np.nan, np.inf, 1.0
    for bad, words in ((nan, "not finite at [joint3=nan]"), (inf, "joint6=inf"), (far, "outside the joint limits"),
                       (HOME[:7], "shape (7,)"), (None, "shape (0,)")):
        state, problem = f.hold_state(bad)
        assert state is None and words in problem
    # A joint at its stop reading a hair beyond it: held at the limit, not refused.
    at_stop = HOME.copy()
    at_stop[7] = -1e-4
    state, problem = f.hold_state(at_stop)
    assert problem == "" and state[7] == 0.0


class RefusesNonFinite(ScriptedPolicy):
    """Like the policy server: an observation with a non-finite state is answered with an error."""

    def __init__(self):
        super().__init__()
        self.asked = 0

    def predict_chunk(self, obs):
        self.asked += 1
        if not np.all(np.isfinite(obs["observation.state"])):
            raise ValueError("invalid observation")
        return super().predict_chunk(obs)


def test_nan_state_at_start_up_sends_nothing_and_never_becomes_a_command():
    """Issue 19: a NaN measured state taken as the hold target carried into every later command."""
    policy = RefusesNonFinite()
    loop = ControlLoop(policy, SafetyFilter(ROBOT))
    bad = HOME.copy()
    bad[4] = np.nan
    for _ in range(5):
        status = loop.step({"observation.state": bad.astype(np.float32)})
        assert status.holding and status.action is None and "joint5=nan" in status.reason
    assert policy.asked == 0  # an invalid observation is not even sent to the policy
    sent = [loop.step({"observation.state": HOME.astype(np.float32)}).action for _ in range(12)]
    sent = np.array(sent)
    assert np.all(np.isfinite(sent)) and sent[-1][0] > HOME[0]  # it moves once the state is good
    assert np.all(np.abs(np.diff(sent, axis=0)) <= STEP + 1e-6)


def test_bad_state_mid_run_holds_the_last_command_then_resumes():
    loop = ControlLoop(RefusesNonFinite(), SafetyFilter(ROBOT))
    obs = {"observation.state": HOME.astype(np.float32)}
    last = [loop.step(obs).action for _ in range(3)][-1]
    for value in (np.nan, np.inf, 5.0):  # 5.0: far outside joint2's limits
        bad = HOME.copy()
        bad[1] = value
        status = loop.step({"observation.state": bad.astype(np.float32)})
        assert status.holding and np.array_equal(status.action, last)
    assert not loop.step(obs).holding


def test_out_of_limits_state_at_start_up_is_not_held_but_a_state_at_the_stop_is():
    loop = ControlLoop(RefusesNonFinite(), SafetyFilter(ROBOT), asynchronous=False)
    far = HOME.copy()
    far[3] = 1.0  # joint4's limits are [-3.07, -0.07]
    assert loop.step({"observation.state": far.astype(np.float32)}).action is None
    loop.watchdog = Watchdog(clock=lambda: 0.0)
    loop.watchdog.estop()
    at_stop = HOME.copy()
    at_stop[7] = -1e-4
    status = loop.step({"observation.state": at_stop.astype(np.float32)}, {})
    assert status.holding and status.action[7] == 0.0  # held at the limit, not beyond it


def test_resync_makes_the_loop_go_on_from_what_the_arm_last_got():
    loop = ControlLoop(ScriptedPolicy(), SafetyFilter(ROBOT))
    obs = {"observation.state": HOME.astype(np.float32)}
    for _ in range(3):
        loop.step(obs)
    loop.resync(HOME)
    status = loop.step(obs)
    assert np.all(np.abs(status.action - HOME) <= STEP + 1e-6)
    loop.resync(None)  # nothing sent: the next command starts from the measured state
    assert np.all(np.abs(loop.step(obs).action - HOME) <= STEP + 1e-6)
