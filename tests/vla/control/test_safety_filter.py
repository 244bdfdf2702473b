"""The safety filter, exactly: full reports, limit boundaries, both modes, both directions (fast, numpy only).

tests/vla/control/test_control.py covers the filter inside the loop; these pin each check down to the value, so
that `make mutation` (tests/mutation/EQUIVALENT.md) finds a test for every changed comparison or constant.
"""

import numpy as np
import pytest

from vla.control import SafetyFilter, SafetyReport
from vla.robot import load_robot_config

ROBOT = load_robot_config("panda")
HOME = ROBOT.home_array.astype(np.float64)  # joint1 is 0.0 at home: boundaries on it are exact
F = SafetyFilter(ROBOT)
STEP = F.velocity_step  # (8,) the most one tick may move each joint
LOWER, UPPER = F.lower, F.upper


def at(joint: int, value: float, base=HOME) -> np.ndarray:
    q = np.array(base, dtype=np.float64)
    q[joint] = value
    return q


# --- construction ---------------------------------------------------------------------------------------
def test_an_unknown_mode_is_refused_by_name():
    with pytest.raises(ValueError) as info:
        SafetyFilter(ROBOT, "soft")
    assert str(info.value) == "safety mode 'soft'; expected one of ('clamp', 'reject')"


def test_a_configured_max_step_is_stricter_never_looser_than_the_velocity_limit():
    assert np.array_equal(SafetyFilter(ROBOT).max_step, STEP)
    assert np.array_equal(SafetyFilter(ROBOT, max_step=0.01).max_step, np.minimum(STEP, 0.01))
    assert np.array_equal(SafetyFilter(ROBOT, max_step=10.0).max_step, STEP)
    f = SafetyFilter(ROBOT, max_step=0.05)
    safe, report = f.check([at(0, 0.2)] * 3, HOME)
    assert report == SafetyReport(True, {"step": 3})
    assert np.allclose(safe[:, 0], [0.05, 0.1, 0.15])


# --- check: every rejection, with its full report ------------------------------------------------------------
def test_a_bad_measured_state_rejects_the_chunk():
    f = SafetyFilter(ROBOT)
    chunk = [HOME]
    assert f.check(chunk, HOME[:7]) == (None, SafetyReport(False, {"state": 1},
                                                            "measured state (7,) is not 8 finite values"))
    assert f.check(chunk, at(2, np.nan)) == (None, SafetyReport(False, {"state": 1},
                                                                 "measured state (8,) is not 8 finite values"))
    assert f.summary() == {"chunks_rejected": 2, "state": 2}


def test_a_bad_previous_command_rejects_the_chunk_even_in_clamp_mode():
    """A NaN step reference would make every jump and step comparison false: the first action
    would pass unlimited (found through a surviving mutant)."""
    for mode in ("clamp", "reject"):
        f = SafetyFilter(ROBOT, mode)
        assert f.check([at(0, 2.0)], HOME, previous=at(0, np.nan)) == (
            None, SafetyReport(False, {"state": 1}, "previous command (8,) is not 8 finite values"))
        assert f.check([HOME], HOME, previous=HOME[:7])[1].reason == "previous command (7,) is not 8 finite values"


def test_shape_and_non_finite_reports():
    f = SafetyFilter(ROBOT)
    assert f.check(np.zeros((2, 7)), HOME)[1] == SafetyReport(False, {"shape": 1},
                                                              "chunk of shape (2, 7); expected (K, 8)")
    assert f.check([at(1, np.inf), at(4, np.nan)], HOME)[1] == SafetyReport(False, {"non_finite": 2},
                                                                           "chunk holds NaN or inf")


def test_reject_mode_reports_a_start_jump_with_the_joints():
    safe, report = SafetyFilter(ROBOT, "reject").check([at(0, 1.0, at(2, 0.5))], HOME)
    assert safe is None
    assert report == SafetyReport(False, {"start_jump": 2},
                                  "first action jumps more than 0.35 from the current command at ['joint1', 'joint3']")


def test_reject_mode_reports_positions_outside_the_limits():
    chunk = [HOME, at(3, 0.0)]
    assert SafetyFilter(ROBOT, "reject").check(chunk, HOME) == (
        None, SafetyReport(False, {"position": 1}, "targets outside the joint limits"))


def test_reject_mode_refuses_a_step_beyond_the_velocity_limit():
    # No start jump and no position fault: only the second action moves too fast.
    chunk = [HOME, at(0, 2 * STEP[0])]
    f = SafetyFilter(ROBOT, "reject")
    assert f.check(chunk, HOME) == (None, SafetyReport(False, {"step": 1}, "a step exceeds the velocity limit"))
    assert f.summary() == {"chunks_rejected": 1, "step": 1}


def test_an_accepted_chunk_is_float32_and_counted():
    f = SafetyFilter(ROBOT)
    safe, report = f.check([HOME, HOME], HOME)
    assert report == SafetyReport(True, {}) and safe.dtype == np.float32 and safe.shape == (2, 8)
    assert f.summary() == {"chunks_accepted": 1}


# --- check: boundaries and directions ------------------------------------------------------------------------
def test_the_step_reference_is_the_last_command_when_there_is_one():
    previous = at(0, 0.3)  # the arm has not caught up with the last command yet
    safe, report = F.check([previous], HOME, previous)
    assert report == SafetyReport(True, {}) and safe[0, 0] == np.float32(0.3)
    safe, report = F.check([HOME], HOME, previous)  # back to where the arm is: too fast from the command
    assert report == SafetyReport(True, {"step": 1}) and safe[0, 0] == np.float32(0.3 - STEP[0])


def test_a_start_jump_of_exactly_the_threshold_is_not_a_jump():
    f = SafetyFilter(ROBOT, max_start_jump=0.25)
    assert f.check([at(0, 0.25)], HOME)[1] == SafetyReport(True, {"step": 1})
    assert f.check([at(0, 0.2500001)], HOME)[1] == SafetyReport(True, {"start_jump": 1, "step": 1})


def test_a_step_of_exactly_the_limit_is_not_clamped_and_one_a_hair_more_is():
    exact = at(0, STEP[0] + 1e-12)  # the slack for rounding, to the last bit
    safe, report = F.check([exact], HOME)
    assert report == SafetyReport(True, {}) and safe[0, 0] == np.float32(STEP[0] + 1e-12)
    ramp = [at(0, k * STEP[0]) for k in range(1, 6)]  # steps of exactly STEP (rounded), five ticks
    assert F.check(ramp, HOME)[1] == SafetyReport(True, {})
    safe, report = F.check([at(0, STEP[0] + 1e-9)], HOME)
    assert report == SafetyReport(True, {"step": 1}) and safe[0, 0] == np.float32(STEP[0])


def test_clamp_mode_counts_every_clamped_step_and_limits_both_directions():
    for sign in (1.0, -1.0):
        safe, report = F.check([at(0, sign * 1.0)] * 4, HOME)
        assert report == SafetyReport(True, {"start_jump": 1, "step": 4})
        assert np.allclose(safe[:, 0], sign * STEP[0] * np.arange(1, 5), atol=1e-7)
        assert np.allclose(safe[:, 1:], HOME[1:])


def test_clamp_mode_clamps_positions_to_both_limits():
    low = at(5, LOWER[5] - 0.01, HOME)
    start = at(5, LOWER[5] + 0.001)
    safe, report = F.check([low], start)
    assert report == SafetyReport(True, {"position": 1}) and safe[0, 5] == np.float32(LOWER[5])
    safe, report = F.check([at(3, 0.0)], at(3, UPPER[3]))
    assert report == SafetyReport(True, {"position": 1}) and safe[0, 3] == np.float32(UPPER[3])


def test_a_chunk_exactly_at_the_limits_is_not_an_intervention():
    at_stops = at(5, LOWER[5], at(3, UPPER[3]))
    assert F.check([at_stops], at_stops)[1] == SafetyReport(True, {})


def test_the_rate_limit_is_computed_in_float64_even_for_a_float32_chunk():
    target = at(0, 2.5).astype(np.float32)
    f = SafetyFilter(ROBOT, max_step=0.001)
    safe, _ = f.check(np.tile(target, (2000, 1)), HOME)  # 2000 clamped steps of 1 mrad from 0.0
    expected = np.float32(np.cumsum(np.full(2000, f.max_step[0])))
    assert np.abs(safe[:, 0] - expected).max() <= 2.5e-7  # float32 rounding once, not 2000 times


# --- limit_tick: the last line before the actuator ---------------------------------------------------------
def test_limit_tick_clamps_positions_and_steps_in_both_directions():
    f = SafetyFilter(ROBOT)
    a, changed = f.limit_tick(at(3, 0.0, at(5, -1.0)), None)
    assert changed is True and a[3] == UPPER[3] and a[5] == LOWER[5] and a.dtype == np.float64
    previous = at(0, 0.5)
    for target, expected in ((1.0, 0.5 + STEP[0]), (0.0, 0.5 - STEP[0])):
        a, changed = f.limit_tick(at(0, target), previous)
        assert changed is True and a[0] == pytest.approx(expected, abs=1e-12) and np.array_equal(a[1:], HOME[1:])
    a, changed = f.limit_tick(at(0, 0.51).astype(np.float32), previous)
    assert changed is False and a[0] == pytest.approx(0.51, abs=1e-7) and a.dtype == np.float64
    assert f.counts == {"tick_limit": 3}


def test_limit_tick_notices_a_change_of_a_few_nanoradians():
    a, changed = F.limit_tick(at(7, -5e-9), None)  # the gripper a hair below its closed stop at 0.0
    assert changed is True and a[7] == 0.0


# --- hold_state: which measured state may become a hold target ------------------------------------------------
MARGIN = F.STATE_MARGIN * (UPPER - LOWER)


@pytest.mark.parametrize("joint", [3, 7])  # joint4: limits below zero; finger: a 4 cm range
def test_a_reading_within_the_margin_is_held_at_the_limit_and_beyond_it_is_refused(joint):
    for edge, sign in ((LOWER[joint], -1.0), (UPPER[joint], 1.0)):
        state, problem = F.hold_state(at(joint, edge + sign * MARGIN[joint]))  # exactly the margin: accepted
        assert problem == "" and state[joint] == edge
        state, problem = F.hold_state(at(joint, edge + sign * 0.5 * MARGIN[joint]))
        assert problem == "" and state[joint] == edge
        state, problem = F.hold_state(at(joint, edge + sign * 1.5 * MARGIN[joint]))
        assert state is None and problem.startswith("measured state outside the joint limits at [")


def test_hold_state_names_the_joints_values_and_limits():
    _, problem = F.hold_state(at(3, 1.0, at(0, 3.5)))
    assert problem == ("measured state outside the joint limits at [joint1=3.5000 (limits [-2.8973, 2.8973]), "
                       "joint4=1.0000 (limits [-3.0718, -0.0698])]")
    _, problem = F.hold_state(at(0, np.nan, at(6, -np.inf)))
    assert problem == "measured state is not finite at [joint1=nan, joint7=-inf]"


# --- check_command: the publisher's check of one command ---------------------------------------------------------
ATOL = SafetyFilter.COMMAND_ATOL


def test_check_command_limits_are_inclusive_within_the_float32_tolerance():
    for q in (at(5, LOWER[5] - ATOL), at(5, LOWER[5]), at(3, UPPER[3] + ATOL), at(3, UPPER[3])):
        assert F.check_command(q, q) == SafetyReport(True)
    q = at(5, LOWER[5] - 2 * ATOL)
    assert F.check_command(q, q) == SafetyReport(False, {"position": 1},
                                                 "command outside the joint limits at [joint6=-0.0175 "
                                                 "(limits [-0.0175, 3.7525])]")


def test_check_command_step_limit_is_inclusive_within_the_tolerance():
    assert F.check_command(at(0, STEP[0] + ATOL), HOME) == SafetyReport(True)
    assert F.check_command(at(0, -(STEP[0] + ATOL)), HOME) == SafetyReport(True)
    report = F.check_command(at(0, 0.3, at(4, -0.3)), HOME)
    assert report == SafetyReport(False, {"step": 2}, "command steps beyond the velocity limit from the last "
                                  "command sent: joint1 by 0.3000 (at most 0.2175), joint5 by 0.3000 (at most 0.2610)")


def test_check_command_full_reports():
    assert F.check_command(HOME[:3], HOME) == SafetyReport(
        False, {"shape": 1}, f"command of shape (3,); expected (8,) for {ROBOT.joint_names}")
    assert F.check_command(at(1, np.nan, at(2, np.inf)), HOME) == SafetyReport(
        False, {"non_finite": 2}, "command is not finite at [joint2=nan, joint3=inf]")
    assert F.check_command(HOME, None) == SafetyReport(
        False, {"no_reference": 1}, "no reference for the step check: no command sent yet and no valid measured state")
    assert F.check_command(at(3, 0.0, at(7, 0.05)), HOME).interventions == {"position": 2}


# --- values that are not numbers at all ----------------------------------------------------------------------
def test_a_missing_value_anywhere_is_refused_like_a_nan_never_a_crash():
    """A joint reading or command of None (a message with a hole) counts as not finite."""
    holes = [None if i == 2 else float(v) for i, v in enumerate(HOME)]
    assert F.check([HOME], holes) == (None, SafetyReport(False, {"state": 1},
                                                         "measured state (8,) is not 8 finite values"))
    assert F.hold_state(holes) == (None, "measured state is not finite at [joint3=nan]")
    assert F.check_command(holes, HOME) == SafetyReport(False, {"non_finite": 1},
                                                        "command is not finite at [joint3=nan]")
    report = F.check_command(HOME, holes)  # no usable reference for the step check: refused
    assert report.accepted is False and report.interventions == {"step": 1}
    assert F.check([HOME], HOME, previous=holes) == (  # the step reference, likewise
        None, SafetyReport(False, {"state": 1}, "previous command (8,) is not 8 finite values"))
