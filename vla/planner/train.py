"""`vla train --objective planner`: teach the backbone to describe, plan, predict and judge.

Each optimizer step sums four losses on one backbone: scene description and plan writing
(cross-entropy on the target text, images augmented as for actions), the world model's state
change (cross-entropy) and the critic's ranking loss. The critic learns self-supervised, as
in VLWM: along a demonstration the cost must fall step by step toward the goal, and the goal
state must cost less than a distractor (another episode's state with a different goal) or the
end of a plan with one step left out. Warm-starting from a trained VLA (`--init`) keeps its
vision features and tokenizer, so the same backbone serves actions and plans. The optimisation,
checkpoints, `--resume`, accelerate and train_info.json are the shared loop's (vla.train.loop).
"""

from __future__ import annotations

import json
import random
from dataclasses import asdict
from pathlib import Path
from typing import Any

import torch
import torch.nn.functional as F
from safetensors.torch import load_file

from vla.data import open_dataset
from vla.data.dataset import DemoDataset
from vla.model.vla import VLAModel, load_weights
from vla.planner.data import EpisodePlan, PlannerData, build_planner_data
from vla.planner.model import (
    PLANNER_CONFIG,
    PLANNER_WEIGHTS,
    USES,
    PlannerConfig,
    PlannerModel,
    critic_prompt,
    describe_prompt,
    plan_prompt,
    world_prompt,
)
from vla.planner.plan import apply_change
from vla.train.data import augment
from vla.train.loop import Objective, TrainConfig, resume_point, train_loop

MARGIN = 1.0


def measure_lengths(model: PlannerModel, data: PlannerData, slack: int = 8) -> PlannerConfig:
    """Per-use prompt/target token lengths: the longest in the data plus `slack`."""
    tok = model.vla.tokenizer

    def longest(texts, eos=False):
        return max(len(ids) for ids in tok(sorted(set(texts)), add_special_tokens=False)["input_ids"]) + eos + slack

    states = [s for ep in data.episodes for s in ep.states]
    goals = [ep.states[-1] for ep in data.episodes]
    return PlannerConfig(
        prompt_tokens={
            "describe": longest([describe_prompt()]),
            "plan": longest([plan_prompt(i) for _, i, _ in data.plans]),
            "world": longest([world_prompt(a, s) for a, s, _ in data.world]),
            # The longest goal with the longest state: every pair the critic meets fits.
            "critic": longest([critic_prompt(max(goals, key=len), max(states, key=len))], eos=True),
        },
        target_tokens={"describe": longest([d for _, d in data.descriptions]),
                       "plan": longest([p for _, _, p in data.plans]),
                       "world": longest([c for _, _, c in data.world])},
    )


def critic_pairs(episodes: list[EpisodePlan], n: int, rng: random.Random) -> tuple[list[str], list[str], list[str]]:
    """(goals, better states, worse states): progress along a demonstration, and goal vs distractor."""
    goals, better, worse = [], [], []
    while len(goals) < n:
        ep = rng.choice(episodes)
        goal, states = ep.states[-1], ep.states
        kind = rng.random()
        if kind < 0.4:  # one step of progress lowers the cost
            j = rng.randrange(len(states) - 1)
            good, bad = states[j + 1], states[j]
        elif kind < 0.7:  # a state of an episode with another goal
            other = rng.choice(episodes)
            bad = rng.choice(other.states)
            if bad == goal:
                continue
            good = goal
        else:  # the end of the plan with one step left out
            steps = ep.plan_from(0).steps
            drop = rng.randrange(len(steps))
            bad = states[0]
            for k, step in enumerate(steps):
                if k != drop:
                    bad = apply_change(bad, step.change)
            if bad == goal:
                continue
            good = goal
        goals.append(goal)
        better.append(good)
        worse.append(bad)
    return goals, better, worse


def planner_step(model: PlannerModel, data: PlannerData, batch_size: int, generator: torch.Generator,
                 rng: random.Random, do_augment: bool = True) -> tuple[torch.Tensor, dict[str, float]]:
    """One planner batch: the sum of the four uses' losses (describe, plan, world, critic), so
    every step trains every use of the shared backbone; returns (loss, metrics)."""
    def images(rows):
        x = data.images[torch.tensor(rows)].float().div_(255)
        return (augment(x, generator) if do_augment else x).to(model.device)

    desc = [data.descriptions[rng.randrange(len(data.descriptions))] for _ in range(batch_size)]
    plans = [data.plans[rng.randrange(len(data.plans))] for _ in range(batch_size)]
    world = [data.world[rng.randrange(len(data.world))] for _ in range(batch_size)]
    l_desc, a_desc = model.lm_loss("describe", [describe_prompt()] * batch_size, [d for _, d in desc],
                                   images([r for r, _ in desc]))
    l_plan, a_plan = model.lm_loss("plan", [plan_prompt(i) for _, i, _ in plans], [p for _, _, p in plans],
                                   images([r for r, _, _ in plans]))
    l_world, a_world = model.lm_loss("world", [world_prompt(a, s) for a, s, _ in world], [c for _, _, c in world])
    goals, better, worse = critic_pairs(data.episodes, batch_size, rng)
    costs = model.cost(goals + goals, better + worse)
    good, bad = costs[:batch_size], costs[batch_size:]
    l_critic = F.relu(MARGIN + good - bad).mean()
    loss = l_desc + l_plan + l_world + l_critic
    return loss, {"loss": loss.item(), "describe_loss": l_desc.item(), "describe_acc": a_desc,
                  "plan_loss": l_plan.item(), "plan_acc": a_plan, "world_loss": l_world.item(),
                  "world_acc": a_world, "critic_loss": l_critic.item(),
                  "critic_rank_acc": float((good < bad).float().mean())}


def train_planner(dataset: str | Path, out: str | Path, init: str | Path, cfg: TrainConfig | None = None,
                  resume: bool = False, progress: bool = True) -> dict[str, Any]:
    """Train a planner on `dataset`, starting from the VLA (or planner) checkpoint `init`; save to `out`."""
    cfg = cfg or TrainConfig()
    out = Path(out)
    ckpt = resume_point(out, resume)
    torch.manual_seed(cfg.seed)  # the critic's initial weights, the same on every process
    demo = open_dataset(dataset)
    source = Path(ckpt or init)
    model, data = _planner_and_data(source, demo, progress)
    objective = Objective(
        tag="planner", model=model,
        step=lambda m, generator, rng: planner_step(m, data, cfg.batch_size, generator, rng, cfg.augment),
        save=lambda m, path: m.save_pretrained(path),
        metrics=["loss", "describe_loss", "describe_acc", "plan_loss", "plan_acc", "world_loss", "world_acc",
                 "critic_loss", "critic_rank_acc"],
        info={"objective": "planner", "dataset": str(dataset), "init": str(init),
              "planner_config": asdict(model.config), "episodes": len(data.episodes),
              "frames_decoded": len(data.images), "uses": list(USES)})
    return train_loop(objective, cfg, out, ckpt, progress)


def _planner_and_data(source: Path, demo: DemoDataset, progress: bool) -> tuple[PlannerModel, PlannerData]:
    """The planner to train from `source` (a planner checkpoint: resumed or trained further; a
    VLA checkpoint: a new critic and sequence lengths measured on the data), and its data."""
    vla = VLAModel.from_pretrained(source)
    if sorted(vla.config.cameras) != sorted(demo.cameras):
        raise ValueError(f"{source} was trained with cameras {vla.config.cameras}; the dataset has {demo.cameras}")
    data = build_planner_data(demo, vla.vision_size, cameras=list(vla.config.cameras), progress=progress)
    if not (source / PLANNER_CONFIG).is_file():
        model = PlannerModel(vla)
        model.config = measure_lengths(model, data)
        return model, data

    model = PlannerModel(vla, PlannerConfig.from_dict(json.loads((source / PLANNER_CONFIG).read_text())))
    load_weights(model.critic, load_file(str(source / PLANNER_WEIGHTS)), str(source / PLANNER_WEIGHTS))
    return model, data
