import threading
import time

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
def test_async_refill_skips_actions_that_are_already_past_and_cross_fades():
    calls = []

    def slow_policy(obs):
        calls.append(obs["t"])
        time.sleep(0.05)
        base = obs["t"]  # the chunk is a ramp starting at the request's tick
        return np.arange(base, base + 10, dtype=np.float64)[:, None] * np.ones(2)

    ex = ChunkExecutor(slow_policy, refill_threshold=4, blend=2, asynchronous=True)
    sent = []
    t = 0
    while t < 40:
        chunk = ex.poll({"t": t})
        if chunk is not None:
            ex.enqueue(chunk)
        action = ex.pop()
        if action is not None:
            sent.append(action[0])
        t += 1
        time.sleep(0.02)  # the control period; a request takes about 2.5 of them
    sent = np.array(sent)
    # The ramp is followed without going back in time and without jumps at the hand-overs.
    assert len(calls) >= 3
    assert np.all(np.diff(sent) >= -1e-9) and np.max(np.diff(sent)) <= 2.0 + 1e-9


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


def test_async_loop_holds_while_waiting_instead_of_blocking():
    release = threading.Event()

    class Blocking(ScriptedPolicy):
        def predict_chunk(self, obs):
            release.wait(5)
            return super().predict_chunk(obs)

    loop = ControlLoop(Blocking(), SafetyFilter(ROBOT), asynchronous=True)
    obs = {"observation.state": HOME.astype(np.float32)}
    start = time.perf_counter()
    status = loop.step(obs)
    assert time.perf_counter() - start < 0.05 and status.holding and status.reason == "waiting for the policy"
    release.set()
    time.sleep(0.05)
    assert not loop.step(obs).holding
