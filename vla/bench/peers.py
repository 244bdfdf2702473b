"""`vla bench peers`: our VLA, LeRobot's ACT and LeRobot's Diffusion Policy, trained on the same
LeRobot dataset with the same number of optimizer steps and batch size, then scored by the same
`vla eval` harness on the same seeds and episodes.

Per policy: per-task and mean success with 95% intervals, training wall time, parameters and
policy time per control step. A policy that cannot train on the dataset (missing features) is
reported with its error and the others still run.
"""

from __future__ import annotations

import platform
import time
from pathlib import Path
from typing import Any

import numpy as np
import torch

import sim
from vla.evaluate import evaluate, wilson_interval
from vla.peers import LeRobotPolicy
from vla.peers.train import train_peer
from vla.policy import VLAPolicy
from vla.train.trainer import TrainConfig, train


class _Timed:
    """Any Policy, with the wall time of every call recorded (policy time per control step)."""

    def __init__(self, policy):
        self.policy, self.metadata, self.times = policy, policy.metadata, []

    def reset(self) -> None:
        self.policy.reset()

    def predict_chunk(self, obs):
        start = time.perf_counter()
        chunk = self.policy.predict_chunk(obs)
        self.times.append(((time.perf_counter() - start) * 1e3, len(chunk)))
        return chunk


def machine() -> str:
    return (f"{platform.machine()}, {torch.get_num_threads()} torch threads, "
            f"{'cuda: ' + torch.cuda.get_device_name() if torch.cuda.is_available() else 'cpu'}")


def vla_train_config(steps: int, batch_size: int, seed: int, time_budget_s: float | None = None):
    """The VLA's recipe in the benchmarks: the shipped policy's learning rate, short warm-up, one checkpoint
    (`time_budget_s`: train that long instead of `steps`)."""
    return TrainConfig(steps=steps, batch_size=batch_size, seed=seed, lr=6e-4,
                       warmup_steps=min(300, max(1, steps // 10)), checkpoint_every=max(steps, 1),
                       time_budget_s=time_budget_s)


def score(name: str, policy, tasks: list[str], make_env, episodes: int, seed: int, progress: bool) -> dict[str, Any]:
    """Success per task and overall (95% intervals) through the `vla eval` harness, and policy time
    per control step (time inside the policy divided by the actions it produced)."""
    timed = _Timed(policy)
    result = evaluate(name, tasks, make_env, lambda env, p=timed: p, episodes, seed, progress=progress)
    overall = result["overall"]
    calls = np.array([ms for ms, _ in timed.times])
    actions = sum(n for _, n in timed.times)
    return {
        "tasks": {t: {k: v[k] for k in ("successes", "episodes", "success_rate", "ci95")}
                  for t, v in result["tasks"].items()},
        "successes": overall["successes"], "episodes": overall["episodes"],
        "mean_success": overall["success_rate"],
        "ci95": [round(x, 4) for x in wilson_interval(overall["successes"], overall["episodes"])],
        "policy_ms_per_control_step": round(float(calls.sum() / max(actions, 1)), 3),
        "median_ms_per_call": round(float(np.median(calls)), 3),
        "eval_wall_time_s": result["wall_time_s"],
    }


def _train(name: str, dataset: Path, out: Path, steps: int, batch_size: int, seed: int, progress: bool,
           time_budget_s: float | None = None) -> dict:
    if name == "vla":
        summary = train(dataset, out, "tiny", vla_train_config(steps, batch_size, seed, time_budget_s),
                        progress=progress)
    else:
        summary = train_peer(name, dataset, out, steps, batch_size, seed, progress=progress,
                             time_budget_s=time_budget_s)
    return {"steps": summary["steps"], "wall_time_s": summary["wall_time_s"], "parameters": summary["parameters"]}


def _load(name: str, out: Path):
    if name == "vla":
        return VLAPolicy.from_pretrained(out)
    return LeRobotPolicy.from_pretrained(out)


POLICIES = ("vla", "act", "diffusion")  # ours and LeRobot's (vla.peers.train.PEERS)


def bench_peers(dataset: str | Path, steps: int, episodes: int, tasks: list[str], out: str | Path = "out/peers",
                batch_size: int = 32, seed: int = 0, policies: tuple[str, ...] = POLICIES,
                image_size: int | None = None, progress: bool = True,
                time_budget_s: float | None = None) -> dict[str, Any]:
    """Train each of `policies` on `dataset` (`steps` optimizer steps, or for `time_budget_s` seconds
    each) and score it on `tasks`; the report holds each policy's steps, wall time and success."""
    dataset, out = Path(dataset), Path(out)
    taken = [str(out / name) for name in policies if (out / name).exists()]
    if taken:  # never mix a new run with old checkpoints
        raise FileExistsError(f"{', '.join(taken)} already exist; remove them or pass another --out")
    report: dict[str, Any] = {
        "dataset": str(dataset), "steps": None if time_budget_s else steps, "batch_size": batch_size,
        "budget": f"same wall time ({time_budget_s:.0f} s each)" if time_budget_s else "same optimizer steps",
        "episodes_per_task": episodes, "seed": seed, "tasks": tasks,
        "machine": machine(),
        "policies": {},
    }
    for name in policies:
        entry: dict[str, Any] = {}
        try:
            entry.update(_train(name, dataset, out / name, steps, batch_size, seed, progress, time_budget_s))
            entry.update(score(name, _load(name, out / name), tasks,
                               lambda t: sim.make_env(t, image_size=image_size), episodes, seed, progress))
        except Exception as exc:  # noqa: BLE001 - one policy failing must not stop the others
            entry["error"] = f"{type(exc).__name__}: {exc}"
        report["policies"][name] = entry
    return report
