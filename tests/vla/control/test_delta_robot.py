"""A robot whose actions are not joints (Meta-World's Sawyer: end-effector deltas and a gripper command): the
safety filter checks what the config declares and the loop holds with zero deltas, never with the measured
state taken for an action (fast, numpy only)."""

import threading

import numpy as np
import pytest

from vla.control import ControlLoop, SafetyFilter, SafetyReport, Watchdog
from vla.robot import ActionSpec, CameraSpec, RobotConfig, StateSpec, load_robot_config, robot_config_from_dict

SAWYER = load_robot_config("sawyer_metaworld")
PANDA = load_robot_config("panda")
STATE = np.array([0.1, 0.6, 0.2, 0.9])  # hand x, y, z (m), gripper opening: a valid state
OBS = {"observation.state": STATE.astype(np.float32)}
HOLD_START = np.array([0.0, 0.0, 0.0, -1.0])  # zero deltas, the config's gripper hold (open)


# --- the safety filter -------------------------------------------------------------------------------------
@pytest.mark.parametrize("mode", ["clamp", "reject"])
def test_a_delta_chunk_with_nan_or_the_wrong_shape_is_rejected(mode):
    f = SafetyFilter(SAWYER, mode)
    chunk = np.zeros((3, 4))
    chunk[1, 2] = np.nan
    assert f.check(chunk, STATE) == (None, SafetyReport(False, {"non_finite": 1}, "chunk holds NaN or inf"))
    assert f.check(np.zeros((3, 8)), STATE)[1] == SafetyReport(False, {"shape": 1},
                                                               "chunk of shape (3, 8); expected (K, 4)")
    bad_state = STATE.copy()
    bad_state[0] = np.inf
    assert f.check(np.zeros((1, 4)), bad_state)[1] == SafetyReport(False, {"state": 1},
                                                                   "measured state (4,) is not 4 finite values")
    assert f.summary() == {"chunks_rejected": 3, "non_finite": 1, "shape": 1, "state": 1}


def test_out_of_bounds_deltas_are_clamped_in_clamp_mode():
    chunk = [[1.5, 0.2, -0.3, 0.0], [0.1, -2.0, 0.0, 3.0]]
    safe, report = SafetyFilter(SAWYER).check(chunk, STATE)
    assert report == SafetyReport(True, {"bounds": 3})
    assert np.array_equal(safe, np.array([[1.0, 0.2, -0.3, 0.0], [0.1, -1.0, 0.0, 1.0]], dtype=np.float32))


def test_out_of_bounds_deltas_are_rejected_in_reject_mode_naming_the_dimensions():
    safe, report = SafetyFilter(SAWYER, "reject").check([[0.0, 0.0, 1.01, 0.0], [0.0, 0.0, 0.0, -1.2]], STATE)
    assert safe is None
    assert report == SafetyReport(False, {"bounds": 2}, "actions outside the action bounds at ['gripper', 'hand_dz']")


@pytest.mark.parametrize("mode", ["clamp", "reject"])
def test_large_jumps_between_delta_actions_are_not_step_limited(mode):
    """A delta is a displacement, not a position: -1 then +1 is a full-speed reversal, not a 2-unit jump."""
    chunk = np.array([[1.0, -1.0, 1.0, 1.0], [-1.0, 1.0, -1.0, -1.0], [1.0, 1.0, -1.0, 1.0]])
    f = SafetyFilter(SAWYER, mode, max_start_jump=0.01, max_step=0.001)
    for previous in (None, -chunk[0], HOLD_START):
        safe, report = f.check(chunk, STATE, previous)
        assert report == SafetyReport(True, {}) and np.array_equal(safe, chunk.astype(np.float32))
    assert np.all(np.isinf(f.max_step)) and np.all(np.isinf(f.velocity_step))


def test_limit_tick_bounds_a_delta_but_never_limits_its_step():
    f = SafetyFilter(SAWYER, max_step=0.001)
    a, changed = f.limit_tick(np.array([1.0, -1.0, 0.5, 1.0]), np.array([-1.0, 1.0, -0.5, -1.0]))
    assert changed is False and np.array_equal(a, [1.0, -1.0, 0.5, 1.0])
    a, changed = f.limit_tick(np.array([1.7, -1.0, 0.5, -3.0]), np.array([-1.0, 1.0, -0.5, -1.0]))
    assert changed is True and np.array_equal(a, [1.0, -1.0, 0.5, -1.0])


def test_check_command_accepts_a_first_delta_command_with_no_previous_command():
    f = SafetyFilter(SAWYER)
    assert f.check_command([1.0, -1.0, 0.3, 1.0], None) == SafetyReport(True)
    assert f.check_command([1.0, -1.0, 0.3, 1.0], [-1.0, 1.0, -0.3, -1.0]) == SafetyReport(True)  # no step check
    assert f.check_command([0.0, np.nan, 0.0, 0.0], None) == SafetyReport(
        False, {"non_finite": 1}, "command is not finite at [hand_dy=nan]")
    assert f.check_command([0.0, 0.0, 0.0, 1.5], None) == SafetyReport(
        False, {"bounds": 1}, "command outside the action bounds at [gripper=1.5000 (limits [-1.0000, 1.0000])]")
    assert f.check_command([0.0] * 8, None) == SafetyReport(
        False, {"shape": 1}, "command of shape (8,); expected (4,) for ['hand_dx', 'hand_dy', 'hand_dz', 'gripper']")


def test_hold_state_checks_the_state_bounds_not_the_action_bounds():
    f = SafetyFilter(SAWYER)
    state, problem = f.hold_state(STATE)
    assert problem == "" and np.array_equal(state, STATE)
    # hand_y = 0.0 is within the action bounds [-1, 1] but far below the hand's y bound 0.3.
    state, problem = f.hold_state([0.1, 0.0, 0.2, 0.9])
    assert state is None
    assert problem == "measured state outside the state bounds at [hand_y=0.0000 (limits [0.3000, 1.1000])]"
    state, problem = f.hold_state([0.1, 0.6, 0.2, 1.005])  # within 1% of the range beyond the bound: the bound
    assert problem == "" and state[3] == 1.0
    assert f.hold_state(np.zeros(8))[1] == ("measured state has shape (8,); expected (4,) for "
                                            "['hand_x', 'hand_y', 'hand_z', 'gripper_opening']")
    assert f.hold_state([0.1, np.nan, 0.2, 0.9])[1] == "measured state is not finite at [hand_y=nan]"


def test_hold_action_holds_deltas_at_zero_and_the_gripper_at_its_last_command_or_hold():
    f = SafetyFilter(SAWYER)
    assert np.array_equal(f.hold_action(None, None), HOLD_START)
    assert np.array_equal(f.hold_action(STATE, None), HOLD_START)  # never the measured state
    assert np.array_equal(f.hold_action(STATE, np.array([0.5, -0.2, 0.1, 0.7])), [0.0, 0.0, 0.0, 0.7])
    assert f.hold_action(None, None).dtype == np.float64
    held = f.hold_action(None, np.array([0.5, -0.2, 0.1, 0.7], dtype=np.float32))  # a float32 command: float64
    assert held.dtype == np.float64 and np.array_equal(held, [0.0, 0.0, 0.0, np.float32(0.7)])


def test_hold_action_is_float64_for_a_robot_built_in_code_with_integer_holds():
    """Only absolute setpoints (no zero delta to make the array float): the holds are still float64."""
    robot = RobotConfig(name="valves", control_rate_hz=10, cameras=(CameraSpec("scene", "/scene"),),
                        state=(StateSpec("pressure", 0, 10),),
                        actions=(ActionSpec("valve_a", "absolute", 0, 1, hold=1),
                                 ActionSpec("valve_b", "absolute", 0, 1, hold=0)))
    held = SafetyFilter(robot).hold_action(None, None)
    assert held.dtype == np.float64 and np.array_equal(held, [1.0, 0.0])


def test_hold_action_of_a_joint_robot_is_the_last_command_else_the_measured_state():
    f = SafetyFilter(PANDA)
    home = PANDA.home_array.astype(np.float64)
    last = home + 0.01
    assert f.hold_action(None, None) is None
    assert np.array_equal(f.hold_action(home, None), home)
    assert np.array_equal(f.hold_action(home, last), last) and np.array_equal(f.hold_action(None, last), last)


# A position (wrist, measured by the state's third value, one step = 0.1 at 10 Hz), a delta and an absolute.
MIXED = robot_config_from_dict({
    "name": "mixed", "control_rate_hz": 10, "home": [0.5, 0.0, 0.2],
    "cameras": [{"name": "scene", "topic": "/scene"}],
    "state": [{"name": "force", "lower": -5, "upper": 5}, {"name": "lift", "lower": -1, "upper": 1},
              {"name": "wrist", "lower": -1, "upper": 1}],
    "actions": [{"name": "wrist", "kind": "position", "lower": -1, "upper": 1, "max_velocity": 1.0},
                {"name": "forward", "kind": "delta", "lower": -1, "upper": 1},
                {"name": "grip", "kind": "absolute", "lower": 0, "upper": 1, "hold": 0.25}]})


def test_a_mixed_robot_holds_each_dimension_by_its_kind():
    """Position: the measured joint of the same name (wherever it is in the state); delta: 0; absolute: hold."""
    f = SafetyFilter(MIXED, "reject")
    state = np.array([3.0, 0.1, -0.4])
    assert np.array_equal(f.hold_action(state, None), [-0.4, 0.0, 0.25])
    assert f.hold_action(None, None) is None  # the position has nothing to hold
    assert np.array_equal(f.hold_action(None, np.array([0.3, 0.9, 0.8])), [0.3, 0.0, 0.8])
    # The wrist (a position) is start-jump and step checked from its measured value; the others are not.
    assert f.check([[-0.4, 1.0, 1.0], [-0.35, -1.0, 0.0]], state)[1] == SafetyReport(True, {})
    assert f.check([[-0.2, 0.0, 0.0]], state)[1].interventions == {"step": 1}
    assert f.check([[0.0, 0.0, 0.0]], state)[1].reason == ("first action jumps more than 0.35 from the current "
                                                           "command at ['wrist']")
    assert f.check_command([0.0, 0.0, 0.0], None).interventions == {"no_reference": 1}
    assert f.check_command([-0.35, 1.0, 1.0], [-0.4, -1.0, 0.0]) == SafetyReport(True)
    # Only a position's last value is a step reference: a delta's or an absolute's, even NaN, is never compared.
    assert f.check_command([-0.35, 1.0, 1.0], [-0.4, np.nan, np.nan]) == SafetyReport(True)
    assert f.check_command([-0.35, 1.0, 1.0], [np.nan, -1.0, 0.0]).interventions == {"step": 1}


def test_rate_limiting_a_position_leaves_the_other_dimensions_exactly_as_proposed():
    """The step limit rewrites only the positions: a delta or absolute value passes bit for bit, never
    recomputed as `previous + (value - previous)` (which rounds 1e-12 after a previous of -1)."""
    f = SafetyFilter(MIXED)
    safe, report = f.check([[-0.2, 1e-12, 1e-12], [-0.2, 3e-9, 0.1]], np.array([3.0, 0.1, -0.4]),
                           np.array([-0.4, -1.0, 1.0]))
    assert report == SafetyReport(True, {"step": 1})  # the wrist: -0.4 -> -0.3 -> -0.2
    assert np.array_equal(safe, np.array([[-0.3, 1e-12, 1e-12], [-0.2, 3e-9, 0.1]], dtype=np.float32))
    a, changed = f.limit_tick(np.array([0.0, 1e-12, 1e-12]), np.array([-0.4, -1.0, 1.0]))
    assert changed is True and a[0] == pytest.approx(-0.3, abs=1e-12) and np.array_equal(a[1:], [1e-12, 1e-12])
    a, changed = SafetyFilter(SAWYER).limit_tick(np.array([1e-12, 0.1, -0.3, 1e-12]), np.array([1.0, -1.0, 1.0, -1.0]))
    assert changed is False and np.array_equal(a, [1e-12, 0.1, -0.3, 1e-12])


# --- the control loop ------------------------------------------------------------------------------------
class DeltaPolicy:
    """Moves the hand with deltas and sets the gripper to `grip`, `answers` times; then fails."""

    metadata = {"name": "deltas"}

    def __init__(self, grip: float = 0.6, answers: int = 1):
        self.grip, self.answers = grip, answers
        self.calls = 0

    def reset(self):
        pass

    def predict_chunk(self, obs):
        self.calls += 1
        if self.calls > self.answers:
            raise ConnectionError("server down")
        return np.array([[1.0, -1.0, 0.5, self.grip], [-1.0, 1.0, -0.5, self.grip]], dtype=np.float32)


def test_a_policy_that_fails_at_once_holds_with_zero_deltas_and_the_open_gripper():
    policy = DeltaPolicy(answers=0)
    loop = ControlLoop(policy, SafetyFilter(SAWYER))
    for _ in range(3):
        status = loop.step(OBS)
        assert status.holding and "server down" in status.reason
        assert np.array_equal(status.action, HOLD_START.astype(np.float32))
        assert not np.array_equal(status.action, OBS["observation.state"])


def test_after_its_chunk_a_failing_policy_holds_zero_deltas_and_the_last_gripper_command():
    loop = ControlLoop(DeltaPolicy(grip=0.6, answers=1), SafetyFilter(SAWYER, max_step=0.001))
    sent = [loop.step(OBS).action for _ in range(2)]
    # Full-scale reversals pass as they are: no step limit on deltas.
    assert np.array_equal(sent, np.array([[1.0, -1.0, 0.5, 0.6], [-1.0, 1.0, -0.5, 0.6]], dtype=np.float32))
    for _ in range(3):
        status = loop.step(OBS)
        assert status.holding and "policy failed: server down" in status.reason
        assert np.array_equal(status.action, np.array([0.0, 0.0, 0.0, 0.6], dtype=np.float32))


class GatedDeltaPolicy(DeltaPolicy):
    """Each answer waits until its gate is opened (the second gate stands for every later call): what a test
    sees does not depend on timing."""

    def __init__(self, grip: float):
        super().__init__(grip=grip, answers=10**6)
        self.gates = [threading.Event(), threading.Event()]

    def predict_chunk(self, obs):
        gate = self.gates[min(self.calls, 1)]
        gate.wait(30)  # only a broken test waits this long
        return super().predict_chunk(obs)


def test_a_policy_that_runs_out_of_actions_holds_zero_deltas_and_the_last_gripper_command():
    policy = GatedDeltaPolicy(grip=-0.2)
    loop = ControlLoop(policy, SafetyFilter(SAWYER), asynchronous=True)
    try:
        status = loop.step(OBS)  # the first request is in flight: nothing to do yet
        assert status.holding and status.reason == "waiting for the policy"
        assert np.array_equal(status.action, HOLD_START.astype(np.float32))
        policy.gates[0].set()
        assert loop.executor.wait(30)
        status = loop.step(OBS)  # one tick late: the chunk starts at its second action
        assert not status.holding and np.array_equal(status.action, np.array([-1.0, 1.0, -0.5, -0.2], np.float32))
        for _ in range(3):  # the next request does not answer: nothing queued
            status = loop.step(OBS)
            assert status.holding and status.reason == "waiting for the policy"
            assert np.array_equal(status.action, np.array([0.0, 0.0, 0.0, -0.2], dtype=np.float32))
    finally:
        policy.gates[1].set()
        loop.executor.wait(30)


def test_a_rejected_chunk_and_a_bad_state_hold_with_zero_deltas_never_the_state():
    policy = DeltaPolicy(answers=10)
    original = policy.predict_chunk
    policy.predict_chunk = lambda obs: original(obs) * np.nan if policy.calls == 0 else original(obs)
    loop = ControlLoop(policy, SafetyFilter(SAWYER))
    status = loop.step(OBS)
    assert status.holding and status.rejected and np.array_equal(status.action, HOLD_START.astype(np.float32))
    assert np.array_equal(loop.step(OBS).action, np.array([1.0, -1.0, 0.5, 0.6], dtype=np.float32))
    bad = {"observation.state": np.array([0.1, 5.0, 0.2, 0.9], dtype=np.float32)}  # hand_y far out of bounds
    status = loop.step(bad)
    assert status.holding and "hand_y=5.0000" in status.reason
    assert np.array_equal(status.action, np.array([0.0, 0.0, 0.0, 0.6], dtype=np.float32))


def test_an_estop_holds_a_delta_robot_still():
    now = [0.0]
    watchdog = Watchdog(clock=lambda: now[0])
    loop = ControlLoop(DeltaPolicy(grip=0.9, answers=10), SafetyFilter(SAWYER), watchdog=watchdog)
    assert not loop.step(OBS, {}).holding
    watchdog.estop()
    for _ in range(3):
        status = loop.step(OBS, {})
        assert status.reason == "e-stop engaged"
        assert np.array_equal(status.action, np.array([0.0, 0.0, 0.0, 0.9], dtype=np.float32))
