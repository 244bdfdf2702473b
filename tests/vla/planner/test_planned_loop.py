"""The plan-following loop (`PlannedPolicy`) with a scripted planner: which subtask the wrapped
policy is given, when a step counts as done, when it re-plans and which new plans it refuses.
(The loop with the real trained planner is exercised in tests/vla/planner/test_planner.py.)"""

import numpy as np
import pytest

from vla.planner.plan import parse_plan
from vla.planner.planner import PlanResult
from vla.planner.policy import PlannedPolicy

START = "the red cube is on the table; the blue cube is on the table."
BOTH = ("goal: the red cube is in the bowl; the blue cube is in the bowl. plan: "
        "put the red cube in the bowl => the red cube is in the bowl | "
        "put the blue cube in the bowl => the blue cube is in the bowl")
BLUE_ONLY = ("goal: the red cube is in the bowl; the blue cube is in the bowl. plan: "
             "put the blue cube in the bowl => the blue cube is in the bowl")  # never moves red: refused


class ScriptedPlanner:
    system = "scripted"

    def __init__(self, plans: list[str]):
        self.plans, self.scene, self.calls = list(plans), START, []

    def plan(self, obs, instruction, start=None):
        self.calls.append(start)
        return PlanResult(plan=parse_plan(self.plans.pop(0)), start=start or self.scene)

    def describe(self, obs):
        return self.scene


class Recorder:
    """A policy that only records the instruction it is handed; 5 actions per chunk."""

    metadata = {"name": "recorder", "cameras": [], "action_dim": 8}

    def __init__(self):
        self.instructions = []

    def reset(self):
        self.instructions = []

    def predict_chunk(self, obs):
        self.instructions.append(obs["task"])
        return np.zeros((5, 8), np.float32)


def run(policy: PlannedPolicy, planner: ScriptedPlanner, scenes: list[str]) -> list[str]:
    """One chunk per scene: the scene is what the planner sees when that chunk is asked for."""
    for scene in scenes:
        planner.scene = scene
        policy.predict_chunk({"task": "put both cubes in the bowl"})
    return policy.policy.instructions


def test_each_subtask_is_handed_on_until_its_change_is_seen():
    planner, rec = ScriptedPlanner([BOTH]), Recorder()
    policy = PlannedPolicy(planner, rec, check_every=5)
    red_in = "the red cube is in the bowl; the blue cube is on the table."
    got = run(policy, planner, [START, START, red_in, red_in])
    assert got == ["put the red cube in the bowl"] * 2 + ["put the blue cube in the bowl"] * 2
    assert [e.kind for e in policy.trace.events] == ["plan", "advance"]


def test_one_misread_is_ignored_but_the_same_divergence_three_times_replans_from_the_seen_scene():
    planner, rec = ScriptedPlanner([BOTH, BOTH]), Recorder()
    policy = PlannedPolicy(planner, rec, check_every=5, patience=3)
    knocked = "the red cube is on the table; the blue cube is on the floor."  # blue is not the subtask's
    run(policy, planner, [START, knocked, START, knocked, knocked])
    assert policy.trace.replans == 0  # never three in a row yet
    run(policy, planner, [knocked])
    assert policy.trace.replans == 1 and planner.calls == [None, knocked]
    assert [e.kind for e in policy.trace.events][-2:] == ["diverged", "replan"]


def test_a_new_plan_that_does_not_reach_its_own_goal_is_refused():
    planner, rec = ScriptedPlanner([BOTH, BLUE_ONLY, BLUE_ONLY]), Recorder()
    policy = PlannedPolicy(planner, rec, check_every=5, patience=1)
    knocked = "the red cube is on the table; the blue cube is on the floor."
    got = run(policy, planner, [START, knocked, knocked])
    assert [e.kind for e in policy.trace.events] == ["plan", "diverged", "rejected", "diverged", "rejected"]
    assert got[-1] == "put the red cube in the bowl"  # still the old plan


def test_without_replanning_a_divergence_is_only_recorded():
    planner, rec = ScriptedPlanner([BOTH]), Recorder()
    policy = PlannedPolicy(planner, rec, replan=False, check_every=5, patience=1)
    knocked = "the red cube is on the table; the blue cube is on the floor."
    run(policy, planner, [START, knocked, knocked])
    assert planner.calls == [None] and policy.trace.replans == 0
    assert [e.kind for e in policy.trace.events] == ["plan", "diverged", "diverged"]


def test_settings_that_would_never_check_are_refused():
    with pytest.raises(ValueError, match="check_every=0"):
        PlannedPolicy(ScriptedPlanner([BOTH]), Recorder(), check_every=0)
