"""Never far from the arm (issue 30): every command within the gap bound of the joints measured at that tick.

The gap bound is the robot config's max_velocity x command_gap_s. A reset, a hand-moved arm or a stale
plan opens a gap of 1-2 rad between the last command and the arm; the loop then drops the plan and
approaches the next one from the measured joints at the velocity limits; the e-stop holds the joints
measured when it is raised."""

import dataclasses
import re

import numpy as np
import pytest

from vla.control import ControlLoop, SafetyFilter, SafetyReport, Watchdog
from vla.robot import ConfigError, load_robot_config, robot_config_from_dict

ROBOT = load_robot_config("panda")
HOME = ROBOT.home_array.astype(np.float64)
BOUND = ROBOT.max_command_gap.astype(np.float64)
STEP = ROBOT.max_velocity.astype(np.float64) / ROBOT.control_rate_hz
FAR = HOME + np.r_[1.5, -0.9, 1.2, 0.8, -1.3, 0.6, 1.0, 0.0]  # where a reset for the next seed may put the arm


class Recorder:
    """A policy whose chunk holds the state it was asked from, plus a small ramp on joint1."""

    metadata = {"name": "recorder"}

    def __init__(self):
        self.asked = []

    def reset(self):
        pass

    def predict_chunk(self, obs):
        state = np.asarray(obs["observation.state"], dtype=np.float64)
        self.asked.append(state.copy())
        return np.array([state + np.r_[0.01 * k, np.zeros(7)] for k in range(1, 11)], dtype=np.float32)


def test_the_bound_is_the_velocity_limit_times_the_configured_horizon():
    assert ROBOT.command_gap_s == 0.25
    assert BOUND[:4] == pytest.approx(2.175 * 0.25) and BOUND[4:7] == pytest.approx(2.61 * 0.25)
    assert BOUND[7] >= ROBOT.gripper.upper - ROBOT.gripper.lower  # a squeezing gripper is never cut short


@pytest.mark.parametrize("gap, words", [(0.01, "between one control period (0.1) and 10"),
                                        (float("nan"), "command_gap_s=nan"), ("soon", "expected a number")])
def test_a_bad_command_gap_fails_at_load(gap, words):
    import yaml

    data = yaml.safe_load(ROBOT.source.read_text())
    data["command_gap_s"] = gap
    with pytest.raises(ConfigError, match=re.escape(words)):
        robot_config_from_dict(data)


def test_an_arm_reset_far_away_mid_run_is_approached_from_the_measured_joints():
    policy = Recorder()
    safety = SafetyFilter(ROBOT)
    loop = ControlLoop(policy, safety)
    loop.reset()
    arm = HOME.copy()
    for _ in range(5):  # running near home, the arm following its commands
        status = loop.step({"observation.state": arm.astype(np.float32)})
        assert not status.approaching
        arm = status.action.astype(np.float64)
    arm = FAR.copy()  # the sim resets the arm for the next seed; nobody told the loop
    status = loop.step({"observation.state": arm.astype(np.float32)})
    assert "approaching a new plan from the measured joints" in status.approaching and "joint1" in status.approaching
    assert status.new_chunk and policy.asked[-1] == pytest.approx(FAR)  # planned afresh from where the arm is
    assert np.all(np.abs(status.action - FAR) <= BOUND + 1e-6)
    assert loop.rebases == 1
    for _ in range(20):  # the arm lags its command by one tick; every command stays near it and steps slowly
        previous = status.action.astype(np.float64)
        status = loop.step({"observation.state": arm.astype(np.float32)})
        assert np.all(np.abs(status.action - arm) <= BOUND + 1e-6), "within the gap bound of the measured joints"
        assert np.all(np.abs(status.action - previous) <= STEP + 1e-6), "within the velocity limits"
        arm = previous
    assert loop.rebases == 1


def test_a_stale_chunk_is_cut_to_the_gap_bound_of_the_arm():
    """A chunk planned for a pose the arm is no longer near (the arm stuck, the chunk late) never leads the
    arm by more than the bound: the rest of the way is walked as the arm follows."""
    f = SafetyFilter(ROBOT)
    arm = HOME.copy()
    previous = HOME + np.r_[BOUND[0] - 0.01, np.zeros(7)]  # the last command, just inside the bound
    action, changed = f.limit_tick(HOME + np.r_[1.0, np.zeros(7)], previous, arm)
    assert changed and action[0] == pytest.approx(HOME[0] + BOUND[0]) and f.counts["gap"] == 1


def test_the_publisher_refuses_a_command_beyond_the_bound_and_steps_from_the_arm_when_the_last_one_is_far():
    f = SafetyFilter(ROBOT)
    report = f.check_command(FAR, FAR, measured=HOME)  # one step from the last command, 1.5 rad from the arm
    assert not report.accepted and report.interventions == {"gap": 6}  # joint6 is 0.6 away, inside its 0.65
    assert "beyond the gap bound from the measured joints: joint1 by 1.5000 (at most 0.5437)" in report.reason
    near = HOME + np.r_[STEP[0], np.zeros(7)]
    assert f.check_command(near, previous=FAR, measured=HOME).accepted  # the far last command is no reference
    report = f.check_command(HOME + np.r_[0.3, np.zeros(7)], previous=FAR, measured=HOME)
    assert report.interventions == {"step": 1} and "from the measured joints (the last command sent" in report.reason
    assert f.check_command(near, previous=HOME, measured=None).accepted  # no state: the old check alone


def test_a_hold_never_holds_a_command_far_from_the_arm():
    f = SafetyFilter(ROBOT)
    assert f.hold_action(HOME, FAR) == pytest.approx(HOME)
    close = HOME + np.r_[0.1, np.zeros(7)]
    assert f.hold_action(HOME, close) == pytest.approx(close)  # a command near the arm is still the hold


def test_the_estop_holds_the_joints_measured_when_it_is_raised_and_release_starts_from_the_arm():
    watchdog = Watchdog(observation_timeout_s=10.0, inference_timeout_s=10.0, clock=lambda: 0.0)
    policy = Recorder()
    loop = ControlLoop(policy, SafetyFilter(ROBOT), watchdog=watchdog)
    arm = HOME.copy()
    status = loop.step({"observation.state": arm.astype(np.float32)}, {})
    pressing = status.action.astype(np.float64)
    arm = HOME + np.r_[0.0, 0.0, 0.0, 0.24, 0.0, -0.3, 0.0, -0.02]  # in contact: 0.24-0.3 rad short of the command
    arm[7] = 0.02
    watchdog.estop()
    status = loop.step({"observation.state": arm.astype(np.float32)}, {})
    assert status.holding and status.reason == "e-stop engaged"
    assert status.action == pytest.approx(arm, abs=1e-6) and not np.allclose(status.action, pressing)
    crept = arm + np.r_[0.0, 0.0, 0.0, 0.01, 0.0, 0.0, 0.0, 0.0]  # the arm creeps; the hold does not follow it
    assert loop.step({"observation.state": crept.astype(np.float32)}, {}).action == pytest.approx(arm, abs=1e-6)
    watchdog.reset_estop()
    status = loop.step({"observation.state": crept.astype(np.float32)}, {})
    assert status.new_chunk and policy.asked[-1] == pytest.approx(crept)
    assert np.all(np.abs(status.action - crept) <= STEP + 1e-6)  # from the measured joints, not the old hold


def test_a_robot_config_may_set_its_own_gap():
    tight = dataclasses.replace(ROBOT, command_gap_s=0.1)
    assert SafetyFilter(tight).max_gap[0] == pytest.approx(0.2175)


# --- the edges of the bound (each pins one behaviour `make mutation` found unpinned) --------------------
def test_without_a_measured_state_or_a_command_every_gap_is_infinite():
    f = SafetyFilter(ROBOT)
    for command, measured in ((HOME, None), (None, HOME), (HOME, np.full(8, np.nan)), (HOME, HOME[:7])):
        gap = f.gap(command, measured)
        assert gap.shape == (8,) and np.all(gap == np.inf)
    assert f.far(HOME, None).all(), "with nothing measured, no position counts as near"


def test_a_robot_without_positions_has_no_gap():
    from vla.robot import load_robot_config as load

    sawyer = load("sawyer_metaworld")
    f = SafetyFilter(sawyer)
    state = np.zeros(sawyer.state_dim)
    assert np.array_equal(f.gap(np.full(sawyer.action_dim, 0.5), state), np.zeros(sawyer.action_dim))
    assert not f.far(np.full(sawyer.action_dim, 0.5), state).any()


def test_the_bound_is_inclusive_within_the_tolerance():
    f = SafetyFilter(ROBOT)
    assert HOME[0] == 0.0  # joint1 at 0: the gap below is exact in floating point
    at_bound = HOME.copy()
    at_bound[0] = f.max_gap[0] + f.COMMAND_ATOL
    assert not f.far(at_bound, HOME).any()
    at_bound[0] = f.max_gap[0] + 2 * f.COMMAND_ATOL
    assert f.far(at_bound, HOME)[0]


def test_the_step_check_says_which_reference_it_used():
    f = SafetyFilter(ROBOT)
    two_steps = HOME + np.r_[0.4, np.zeros(7)]
    detail = "joint1 by 0.4000 (at most 0.2175)"
    assert f.check_command(two_steps, None, measured=HOME) == SafetyReport(
        False, {"step": 1}, f"command steps beyond the velocity limit from the measured joints: {detail}")
    assert f.check_command(two_steps, HOME, measured=HOME) == SafetyReport(
        False, {"step": 1}, f"command steps beyond the velocity limit from the last command sent: {detail}")
    assert f.check_command(two_steps, FAR, measured=HOME) == SafetyReport(
        False, {"step": 1}, "command steps beyond the velocity limit from the measured joints (the last command "
                            f"sent is beyond the gap bound): {detail}")
    assert f.reference(HOME, None) == (pytest.approx(HOME), False)


def test_a_gap_refusal_names_every_far_joint():
    f = SafetyFilter(ROBOT)
    command = HOME + np.r_[0.6, 0.0, -0.7, np.zeros(5)]
    assert f.check_command(command, command, measured=HOME) == SafetyReport(
        False, {"gap": 2}, "command is beyond the gap bound from the measured joints: joint1 by 0.6000 (at most "
                           "0.5437), joint3 by 0.7000 (at most 0.5437)")


def test_at_measured_is_float64_and_keeps_what_is_not_a_position():
    f = SafetyFilter(ROBOT)
    out = f.at_measured(FAR.astype(np.float32), HOME)
    assert out.dtype == np.float64 and np.array_equal(out, HOME)
    assert f.at_measured(None, HOME) is None and f.at_measured(FAR, None) is None


def test_limit_tick_steps_from_the_arm_when_the_last_command_is_far_and_cuts_both_ways():
    f = SafetyFilter(ROBOT)
    target = HOME + np.r_[0.01, np.zeros(7)]
    action, _ = f.limit_tick(target, FAR, HOME)  # the far last command is no reference
    assert action == pytest.approx(target)
    below = HOME - np.r_[1.0, np.zeros(7)]
    previous = HOME - np.r_[BOUND[0] - 0.01, np.zeros(7)]
    action, changed = f.limit_tick(below, previous, HOME)
    assert changed and action[0] == pytest.approx(HOME[0] - BOUND[0])
    f.limit_tick(HOME + np.r_[1.0, np.zeros(7)], HOME + np.r_[BOUND[0] - 0.01, np.zeros(7)], HOME)
    assert f.counts["gap"] == 2


def test_a_hold_without_a_measured_state_is_the_last_command():
    assert SafetyFilter(ROBOT).hold_action(None, FAR) == pytest.approx(FAR)
