"""The planner: plan text, data from a recorded dataset, training, and the shipped planner on
held-out seeds in the real simulator (perception, plans, critic, System-2, re-planning)."""

from __future__ import annotations

import json
import random

import numpy as np
import pytest
import torch

from tests.helpers import SHIPPED_PLANNER, SHIPPED_POLICY
from vla.planner.plan import (
    Plan,
    PlanFormatError,
    PlanStep,
    apply_change,
    clauses,
    differing_subjects,
    parse_plan,
    satisfies,
    state_change,
)

START = "the red cube is on the table; the green cube is on the table; the blue cube is on the table."


def test_plan_text_round_trip():
    plan = Plan("the red cube is in the bowl; the green cube is in the bowl.", (
        PlanStep("put the red cube in the bowl", "the red cube is in the bowl"),
        PlanStep("put the green cube in the bowl", "the green cube is in the bowl"),
    ))
    text = plan.text()
    assert text.startswith("goal: ") and " plan: " in text
    assert parse_plan(text) == plan
    assert parse_plan("  " + text.replace(" ", "  ") + " ") == plan  # whitespace does not matter
    assert plan.states(START)[-1] == (
        "the red cube is in the bowl; the green cube is in the bowl; the blue cube is on the table.")


@pytest.mark.parametrize("text, says", [
    ("plan: a => b is c", "must start with 'goal:'"),
    ("goal: the red cube is in the bowl.", "no 'plan:'"),
    ("goal: the red cube is in the bowl. plan:", "no steps"),
    ("goal: the red cube is in the bowl. plan: put the red cube in the bowl", "expected '<subtask> => <state change>'"),
    ("goal: the red cube is in the bowl. plan: put it => red in bowl", "has no ' is '"),
])
def test_malformed_plans_say_what_is_wrong(text, says):
    with pytest.raises(PlanFormatError, match=says.replace("(", r"\(").replace(")", r"\)").replace("'", "'")):
        parse_plan(text)


def test_state_changes():
    after = apply_change(START, "the green cube is on the red cube")
    assert after == "the red cube is on the table; the green cube is on the red cube; the blue cube is on the table."
    assert state_change(START, after) == "the green cube is on the red cube"
    assert differing_subjects(START, after) == {"the green cube"}
    assert satisfies(after, "the green cube is on the red cube")
    assert not satisfies(START, "the green cube is on the red cube")
    assert list(clauses(START)) == ["the red cube", "the green cube", "the blue cube"]


def test_parse_subtask_is_the_inverse_of_the_canonical_phrasing():
    from sim.tabletop.tasks import SINGLE_TEMPLATES, parse_subtask, subtask

    for kind in SINGLE_TEMPLATES:
        b = "left" if kind == "push" else "green"
        sub = subtask(kind, "red", b)
        assert parse_subtask(sub.instruction) == Subtask_like(sub)
    with pytest.raises(ValueError, match="is not a subtask instruction"):
        parse_subtask("put all the cubes in the bowl")
    with pytest.raises(ValueError, match="cannot be stacked on itself"):
        parse_subtask("stack the red cube on the red cube")


def Subtask_like(sub):  # noqa: N802 - parse_subtask keeps dest only for kinds that have one
    from sim.tabletop.tasks import Subtask

    return Subtask(sub.kind, sub.instruction, sub.target, sub.dest if sub.kind in ("push", "stack") else None)


# --- data and training (a dataset recorded here by LeRobot's own writer) ---------------------

@pytest.fixture(scope="module")
def multi_dataset(record_once):
    return record_once(["pair_in_bowl", "tower"], 1, settle_frames=3)


@pytest.mark.slow  # records multi-step episodes (the multi_dataset fixture)
def test_recorded_episodes_give_plans_from_every_subtask(multi_dataset):
    from vla.data import open_dataset
    from vla.planner.data import episode_plans

    episodes = episode_plans(open_dataset(multi_dataset))
    assert len(episodes) == 2
    for ep in episodes:
        assert len(ep.subtasks) == 2 and len(ep.states) == 3
        full, rest = ep.plan_from(0), ep.plan_from(1)
        assert full.subtasks == ep.subtasks and rest.subtasks == ep.subtasks[1:]
        assert full.goal == rest.goal == ep.states[-1]
        assert full.states(ep.states[0])[-1] == ep.states[-1]
        assert "in the gripper" not in ep.states[-1]


@pytest.mark.slow  # records a whole multi-step episode
def test_a_dataset_without_settle_frames_is_refused(tmp_path):
    from vla.data import open_dataset
    from vla.data.dataset import DatasetError
    from vla.data.record import record
    from vla.planner.data import episode_plans

    record(["pair_in_bowl"], 1, tmp_path / "ds", progress=False)
    with pytest.raises(DatasetError, match="--settle-frames"):
        episode_plans(open_dataset(tmp_path / "ds"))


@pytest.mark.slow  # training on the shipped policy's backbone
def test_planner_trains_saves_and_reloads(multi_dataset, tmp_path):
    from vla.planner.model import PlannerModel
    from vla.planner.train import train_planner
    from vla.train.trainer import TrainConfig

    cfg = TrainConfig(steps=2, batch_size=4, warmup_steps=1, checkpoint_every=2, log_every=1)
    summary = train_planner(multi_dataset, tmp_path / "p", SHIPPED_POLICY, cfg, progress=False)
    assert summary["episodes"] == 2
    shipped = json.loads((SHIPPED_PLANNER / "train_info.json").read_text())  # trained before newer recipe fields
    added = {"shipped_checkpoint"}  # train_info fields added after the shipped planner trained
    assert set(summary) == set(shipped) | added and set(shipped["train_config"]) <= set(summary["train_config"])
    model = PlannerModel.from_pretrained(tmp_path / "p")
    again = PlannerModel.from_pretrained(tmp_path / "p")
    prompt = ["state: " + START + " do: put the red cube in the bowl then:"]
    assert model.generate("world", prompt) == again.generate("world", prompt)
    costs = model.cost([START], [START])
    assert torch.equal(costs, again.cost([START], [START]))
    with pytest.raises(FileExistsError):
        train_planner(multi_dataset, tmp_path / "p", SHIPPED_POLICY, cfg, progress=False)


@pytest.mark.slow  # training on the shipped policy's backbone
def test_planner_training_runs_through_the_shared_loop_and_resumes(multi_dataset, tmp_path):
    """The action trainer's loop: decay on weight matrices only, random streams in the
    checkpoint, and `--resume` continuing from the newest checkpoint."""
    from vla.planner.train import train_planner
    from vla.train.loop import STATE_FILE, TrainConfig, latest_checkpoint

    out = tmp_path / "p"
    cfg = TrainConfig(steps=2, batch_size=2, warmup_steps=1, weight_decay=0.1, checkpoint_every=1, log_every=1)
    train_planner(multi_dataset, out, SHIPPED_POLICY, cfg, progress=False)
    state = torch.load(latest_checkpoint(out) / STATE_FILE, weights_only=True)
    assert [g["weight_decay"] for g in state["optimizer"]["param_groups"]] == [0.1, 0.0]
    assert state["step"] == 2 and len(state["rng"]) == 1
    cfg.steps = 3
    summary = train_planner(multi_dataset, out, SHIPPED_POLICY, cfg, resume=True, progress=False)
    assert summary["resumed_from_step"] == 2 and summary["objective"] == "planner"
    assert latest_checkpoint(out).name == "step_0000003"
    assert [line.split(",")[0] for line in (out / "metrics.csv").read_text().split()[1:]] == ["1", "2", "3"]


def test_a_plain_vla_checkpoint_is_not_a_planner():
    from vla.model.vla import CheckpointError
    from vla.planner.model import PlannerModel

    with pytest.raises(CheckpointError, match="not a planner checkpoint"):
        PlannerModel.from_pretrained(SHIPPED_POLICY)


@pytest.mark.slow  # training on the shipped policy's backbone
def test_critic_learns_to_rank_on_its_training_data(multi_dataset):
    """A few steps of the ranking loss on the critic alone separate goal and distractors."""
    from vla.data import open_dataset
    from vla.model.vla import VLAModel
    from vla.planner.data import episode_plans
    from vla.planner.model import PlannerModel
    from vla.planner.train import MARGIN, critic_pairs

    episodes = episode_plans(open_dataset(multi_dataset))
    torch.manual_seed(0)  # the critic head starts from random weights: the same ones every run
    model = PlannerModel(VLAModel.from_pretrained(SHIPPED_POLICY))
    opt = torch.optim.AdamW(model.parameters(), lr=1e-3)
    rng = random.Random(0)
    for _ in range(30):
        goals, good, bad = critic_pairs(episodes, 8, rng)
        c = model.cost(goals + goals, good + bad)
        loss = torch.relu(MARGIN + c[:8] - c[8:]).mean()
        opt.zero_grad()
        loss.backward()
        opt.step()
    goals, good, bad = critic_pairs(episodes, 32, random.Random(1))
    with torch.no_grad():
        c = model.cost(goals + goals, good + bad)
    assert (c[:32] < c[32:]).float().mean() > 0.9


# --- the shipped planner in the simulator, on seeds it never trained on ----------------------

@pytest.fixture(scope="module")
def shipped_planner():
    from vla.planner.planner import Planner

    return Planner.from_pretrained(SHIPPED_PLANNER, device="cpu", candidates=3)


@pytest.fixture
def planner(shipped_planner):
    """The shipped planner as loaded (System-1, 3 candidates, sampling from seed 0), whatever a test
    before this one set or sampled."""
    shipped_planner.system, shipped_planner.candidates = "system1", 3
    shipped_planner.reseed(0)
    return shipped_planner


def _truth(task: str, seed: int):
    from sim import make_env
    from vla.bench.planner import _truth

    env = make_env(task)
    try:
        return _truth(env, seed)
    finally:
        env.close()


def test_shipped_planner_plans_and_predicts_held_out_episodes(planner):
    first, instruction, frames, states, truth = _truth("tower", 5000)
    planner.system = "system1"
    result = planner.plan(first, instruction)
    assert result.plan is not None, result.error
    assert result.plan.subtasks == truth.subtasks
    assert planner.describe(first) == states[0]
    assert planner.predict(states[0], truth.steps[0].subtask) == states[1]


@pytest.mark.slow  # four expert episodes of the multi-step tasks
def test_critic_ranks_the_true_plan_below_one_with_a_step_missing(planner):
    correct = total = 0
    for task, seed in (("all_in_bowl", 5000), ("all_in_bowl", 5001), ("tower", 5002), ("pair_in_bowl", 5003)):
        _, _, _, states, truth = _truth(task, seed)
        for drop in range(len(truth.steps)):
            partial = states[0]
            for k, step in enumerate(truth.steps):
                if k != drop:
                    partial = apply_change(partial, step.change)
            with torch.no_grad():
                good, bad = planner.model.cost([truth.goal] * 2, [truth.goal, partial]).tolist()
            correct += good < bad
            total += 1
    assert correct == total


def test_system2_with_one_candidate_is_system1(planner):
    from sim import make_env

    env = make_env("all_in_bowl")
    obs, info = env.reset(seed=5004)
    env.close()
    planner.system, planner.candidates = "system1", 3
    one = planner.plan(obs, info["task"])
    planner.system, planner.candidates = "system2", 1
    two = planner.plan(obs, info["task"], start=one.start)
    assert two.plan == one.plan and two.candidates == one.candidates
    planner.candidates = 3
    three = planner.plan(obs, info["task"], start=one.start)
    assert three.candidates[0] == one.candidates[0] and len(three.costs) == 3
    assert three.chosen == int(np.argmin(three.costs))


@pytest.mark.slow  # two whole multi-step episodes under the planner
def test_replanning_after_an_object_is_moved(planner):
    """The first cube put in the bowl is taken out again: the loop sees it, re-plans and finishes."""
    from sim import make_env
    from sim.tabletop.experts import SkillExpert
    from vla.bench.planner import _planned_episode
    from vla.planner.policy import PlannedPolicy

    env = make_env("pair_in_bowl")
    planner.system = "system2"
    policy = PlannedPolicy(planner, SkillExpert(env), replan=True)
    result = _planned_episode(env, policy, 3, perturb=True)
    kinds = [e.kind for e in policy.trace.events]
    assert result["perturbed"] and "diverged" in kinds and "replan" in kinds, policy.trace.events
    assert result["success"]
    blind = PlannedPolicy(planner, SkillExpert(env), replan=False)
    assert not _planned_episode(env, blind, 3, perturb=True)["success"]
    env.close()
