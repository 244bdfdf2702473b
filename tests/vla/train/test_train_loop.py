"""The shared training loop on a toy objective: parameter groups, schedule, exact resume, a time
budget, an objective's own optimizer and schedule, and resuming a run whose optimizer state
predates the decay split."""

from __future__ import annotations

import csv
import json
import random
import shutil
from dataclasses import replace
from pathlib import Path

import pytest
import torch
from safetensors.torch import load_file, save_file
from torch import nn

from tests.vla.helpers import assert_same_checkpoint
from vla.train.loop import Objective, TrainConfig, latest_checkpoint, machine, resume_point, train_loop
from vla.train.optim import load_optimizer_state, param_groups, warmup_cosine


class Toy(nn.Module):
    def __init__(self):
        super().__init__()
        self.embed = nn.Embedding(5, 8)
        self.proj = nn.Linear(8, 8)
        self.norm = nn.LayerNorm(8)
        self.scale = nn.Parameter(torch.ones(8))  # a 1-D parameter that is neither norm nor bias
        self.frozen = nn.Linear(8, 8)
        self.frozen.requires_grad_(False)

    def forward(self, tokens: torch.Tensor) -> torch.Tensor:
        return self.norm(self.proj(self.embed(tokens))) * self.scale


def toy_step(model: Toy, generator: torch.Generator, rng: random.Random):
    """Draws from both random streams, so a resume that lost either one would diverge."""
    tokens = torch.randint(0, 5, (4,), generator=generator)
    target = torch.full((4, 8), rng.uniform(-1, 1))
    loss = ((model(tokens) - target) ** 2).mean()
    return loss, {"loss": loss.item()}


def toy_objective(model: Toy) -> Objective:
    def save(m: Toy, path: Path) -> None:
        path.mkdir(parents=True, exist_ok=True)
        save_file({k: v.contiguous() for k, v in m.state_dict().items()}, str(path / "toy.safetensors"))

    return Objective(tag="toy", model=model, step=toy_step, save=save, metrics=["loss"], info={"toy": True})


def run_toy(out: Path, cfg: TrainConfig, resume: bool = False) -> dict:
    """What a trainer does: find the checkpoint, load its weights, hand the rest to the loop."""
    ckpt = resume_point(out, resume)
    torch.manual_seed(cfg.seed)
    model = Toy()
    if ckpt is not None:
        model.load_state_dict(load_file(str(ckpt / "toy.safetensors")))
    return train_loop(toy_objective(model), cfg, out, ckpt, progress=False)


def test_weight_decay_only_on_weight_matrices():
    model = Toy()
    decay, no_decay = param_groups(model, 0.1)
    assert decay["weight_decay"] == 0.1 and no_decay["weight_decay"] == 0.0
    ids = lambda group: {id(p) for p in group["params"]}  # noqa: E731
    assert ids(decay) == {id(model.embed.weight), id(model.proj.weight)}
    assert ids(no_decay) == {id(model.proj.bias), id(model.norm.weight), id(model.norm.bias), id(model.scale)}
    assert id(model.frozen.weight) not in ids(decay) | ids(no_decay)  # frozen parameters are not trained


def test_warmup_then_cosine_to_five_percent():
    f = warmup_cosine(warmup_steps=4, steps=14)
    assert [f(s) for s in range(4)] == [0.25, 0.5, 0.75, 1.0]
    assert f(9) == pytest.approx(0.05 + 0.95 * 0.5)  # half-way through the decay
    assert f(14) == pytest.approx(0.05) and f(100) == pytest.approx(0.05)
    assert all(f(s) > f(s + 1) for s in range(4, 14))


def test_resume_repeats_the_uninterrupted_run_exactly(tmp_path):
    cfg = TrainConfig(steps=6, batch_size=4, lr=1e-2, warmup_steps=2, weight_decay=0.1, checkpoint_every=3,
                      log_every=1)
    out = tmp_path / "run"
    summary = run_toy(out, cfg)
    assert summary["toy"] is True and summary["resumed_from_step"] == 0 and summary["train_config"]["steps"] == 6
    straight = tmp_path / "straight"
    shutil.copytree(latest_checkpoint(out), straight)
    shutil.rmtree(latest_checkpoint(out))  # as if the run had died right after step 3
    assert run_toy(out, cfg, resume=True)["resumed_from_step"] == 3
    assert_same_checkpoint(straight, latest_checkpoint(out), "toy.safetensors")
    rows = list(csv.DictReader((out / "metrics.csv").open()))
    by_step = {}
    for row in rows:  # steps 4..6 were logged twice: by the first run and by the resumed one
        by_step.setdefault(row["step"], []).append((row["loss"], row["lr"]))
    assert [len(v) for v in by_step.values()] == [1, 1, 1, 2, 2, 2]
    assert all(first == again for first, *rest in by_step.values() for again in rest)
    saved = json.loads((out / "train_info.json").read_text())
    assert saved["resumed_from_step"] == 3 and saved["machine"] == machine()


def test_a_fresh_run_over_an_old_one_and_resuming_nothing_are_refused(tmp_path):
    with pytest.raises(FileNotFoundError, match="no checkpoint under"):
        resume_point(tmp_path, resume=True)
    (tmp_path / "checkpoints").mkdir()
    with pytest.raises(FileExistsError, match="pass --resume"):
        resume_point(tmp_path, resume=False)


def test_optimizer_state_from_before_the_decay_split_still_resumes():
    torch.manual_seed(0)
    model = Toy()
    old = torch.optim.AdamW([p for p in model.parameters() if p.requires_grad], lr=1e-2, weight_decay=0.1)
    for _ in range(2):
        old.zero_grad()
        model(torch.arange(5)).square().mean().backward()
        old.step()
    moments = {id(p): old.state[p]["exp_avg"].clone() for p in old.state}
    new = torch.optim.AdamW(param_groups(model, 0.1), lr=1e-2)
    load_optimizer_state(new, old.state_dict(), model)
    assert [g["weight_decay"] for g in new.param_groups] == [0.1, 0.0]
    for group in new.param_groups:
        for p in group["params"]:  # each parameter kept its own moments, not its neighbour's
            assert torch.equal(new.state[p]["exp_avg"], moments[id(p)])
    model.proj.requires_grad_(False)  # another set of trained parameters cannot take that state
    with pytest.raises(ValueError, match="holds 6 parameters; this model trains 4"):
        load_optimizer_state(torch.optim.AdamW(param_groups(model, 0.1)), old.state_dict(), model)


def test_a_time_budget_fixes_the_steps_that_fit_and_a_resume_keeps_them(tmp_path, monkeypatch):
    """Simulated time (0.1 s a step): steps 10-50 are timed, the rest of the budget sets the total,
    the cosine ends there; a resumed run keeps that total even when its steps are slower."""
    import vla.train.loop as loop

    now = [0.0]
    monkeypatch.setattr(loop, "clock", lambda: now[0])

    def timed_step(seconds):
        def step(model, generator, rng):
            now[0] += seconds
            return toy_step(model, generator, rng)
        return step

    def run(out, seconds, resume=False):
        ckpt = resume_point(out, resume)
        torch.manual_seed(0)
        model = Toy()
        if ckpt is not None:
            model.load_state_dict(load_file(str(ckpt / "toy.safetensors")))
        objective = toy_objective(model)
        objective.step = timed_step(seconds)
        return train_loop(objective, cfg, out, ckpt, progress=False)

    cfg = TrainConfig(steps=10**6, batch_size=4, lr=1e-2, warmup_steps=5, checkpoint_every=60, log_every=1,
                      time_budget_s=10.0)
    out = tmp_path / "run"
    summary = run(out, 0.1)
    # at step 50, 5 s gone; 10 - 5 - 2% margin = 4.8 s left at 0.1 s a step: 48 more
    assert summary["steps"] == 98 and summary["train_config"]["steps"] == 98
    rows = list(csv.DictReader((out / "metrics.csv").open()))
    assert int(rows[-1]["step"]) == 98 and float(rows[-1]["lr"]) == pytest.approx(0.05 * 1e-2)
    straight = tmp_path / "straight"
    shutil.copytree(latest_checkpoint(out), straight)
    shutil.rmtree(latest_checkpoint(out))  # died after the checkpoint at step 60
    resumed = run(out, 1.0, resume=True)  # 10x slower steps: a fresh count would stop far earlier
    assert resumed["steps"] == 98 and resumed["resumed_from_step"] == 60
    assert_same_checkpoint(straight, latest_checkpoint(out), "toy.safetensors")


def test_an_objective_brings_its_own_optimizer_and_a_budget_rebuilds_its_schedule(tmp_path, monkeypatch):
    """As LeRobot's peers do: SGD and a linear decay to 0 built for the total. Under a time budget the
    loop rebuilds the schedule for the total its probe fixed, so it reaches 0 at the last step; a run
    resumed from a checkpoint saved before the loop kept the total (the old schedule held it) keeps it."""
    import vla.train.loop as loop

    now = [0.0]
    monkeypatch.setattr(loop, "clock", lambda: now[0])
    built = []

    def linear(optimizer, cfg, steps):
        built.append(steps)
        return torch.optim.lr_scheduler.LambdaLR(optimizer, lambda s: 1 - s / steps)

    def sgd(model, cfg):
        return torch.optim.SGD([p for p in model.parameters() if p.requires_grad], lr=cfg.lr, momentum=0.9)

    def step(model, generator, rng):
        now[0] += 0.1
        return toy_step(model, generator, rng)

    def run(out, resume=False):
        ckpt = resume_point(out, resume)
        torch.manual_seed(0)
        model = Toy()
        if ckpt is not None:
            model.load_state_dict(load_file(str(ckpt / "toy.safetensors")))
        objective = replace(toy_objective(model), step=step, optimizer=sgd, schedule=linear)
        return train_loop(objective, cfg, out, ckpt, progress=False)

    cfg = TrainConfig(steps=10**6, lr=1e-2, checkpoint_every=60, log_every=1, time_budget_s=10.0)
    out = tmp_path / "run"
    assert run(out)["steps"] == 98 and built == [10**6, 98]  # the provisional total, then the budget's
    rows = list(csv.DictReader((out / "metrics.csv").open()))
    # from the probe's end on, the learning rates (to metrics.csv's 6 decimals) of the schedule built for 98 steps
    assert [float(r["lr"]) for r in rows[50:]] == pytest.approx([1e-2 * (1 - s / 98) for s in range(51, 99)], abs=1e-6)
    state = torch.load(latest_checkpoint(out) / "training_state.pt", weights_only=True)
    assert state["optimizer"]["param_groups"][0]["momentum"] == 0.9 and state["total_steps"] == 98
    shutil.rmtree(latest_checkpoint(out))  # died after step 60, with a checkpoint in the old format:
    old = latest_checkpoint(out) / "training_state.pt"
    state = torch.load(old, weights_only=True)
    del state["total_steps"], state["total_fixed"]
    state["scheduler"]["lr_lambdas"] = [{"warmup_steps": 0, "steps": 98, "fixed": True}]
    torch.save(state, old)
    assert run(out, resume=True)["steps"] == 98 and built[-1] == 98
    assert float(list(csv.DictReader((out / "metrics.csv").open()))[-1]["lr"]) == pytest.approx(0.0)


def test_time_budget_and_precision_are_checked_when_the_config_is_made():
    with pytest.raises(ValueError, match="time_budget_s"):
        TrainConfig(time_budget_s=0)
    with pytest.raises(ValueError, match="mixed_precision='fp16'"):
        TrainConfig(mixed_precision="fp16")
    from vla.cli.policy_args import duration

    assert [duration(t) for t in ("2.5h", "40m", "90s", "12")] == [9000, 2400, 90, 12]
    import argparse

    for bad in ("soon", "-1h", "0"):
        with pytest.raises(argparse.ArgumentTypeError):
            duration(bad)
