"""`vla bench chunk`: choose the chunk length K by measurement.

For each K, the default tiny VLA is trained on the same dataset with the same optimizer steps,
batch, seed and recipe (`execute_steps = K // 2`, the shipped ratio: half of each chunk runs
before the next inference). Each is then scored two ways:

- open loop, on a held-out LeRobot dataset recorded from other seeds: the mean absolute error of
  the predicted joint targets against the demonstration's, over the first action and over the
  actions that would run (`execute_steps`), arm joints in milliradians and the gripper apart;
- closed loop, with the `vla eval` harness: success per task on the same seeded episodes, and
  the policy's time per control step (a longer chunk means fewer inferences per second).
"""

from __future__ import annotations

import platform
from pathlib import Path
from typing import Any

import numpy as np
import torch

from vla.bench.peers import _Timed
from vla.evaluate import evaluate, wilson_interval
from vla.train.trainer import TrainConfig, train
from vla.train.validate import open_loop_error


def bench_chunk(dataset: str | Path, heldout: str | Path, chunks: list[int], steps: int, episodes: int,
                tasks: list[str], out: str | Path = "out/chunk", batch_size: int = 32, seed: int = 0,
                progress: bool = True) -> dict[str, Any]:
    import sim

    out = Path(out)
    if any(k < 2 for k in chunks):
        raise ValueError(f"chunk lengths {chunks}: each must be >= 2 (half of it is executed)")
    taken = [str(out / f"k{k}") for k in chunks if (out / f"k{k}").exists()]
    if taken:
        raise FileExistsError(f"{', '.join(taken)} already exist; remove them or pass another --out")
    report: dict[str, Any] = {
        "dataset": str(dataset), "heldout": str(heldout), "steps": steps, "batch_size": batch_size,
        "episodes_per_task": episodes, "seed": seed, "tasks": tasks,
        "machine": f"{platform.machine()}, {torch.get_num_threads()} torch threads, "
                   f"{'cuda: ' + torch.cuda.get_device_name() if torch.cuda.is_available() else 'cpu'}",
        "chunks": {},
    }
    for k in chunks:
        cfg = TrainConfig(steps=steps, batch_size=batch_size, seed=seed, lr=6e-4,
                          warmup_steps=min(300, max(1, steps // 10)), checkpoint_every=max(steps, 1))
        summary = train(dataset, out / f"k{k}", "tiny", cfg, progress=progress,
                        model_overrides={"chunk_length": k, "execute_steps": k // 2})
        entry: dict[str, Any] = {"execute_steps": k // 2, "train_wall_time_s": summary["wall_time_s"],
                                 "parameters": summary["parameters"]}
        from vla.policy import VLAPolicy

        policy = VLAPolicy.from_pretrained(out / f"k{k}")
        entry["open_loop"] = open_loop_error(policy.model, heldout)
        timed = _Timed(policy)
        result = evaluate(f"k{k}", tasks, sim.make_env, lambda env, p=timed: p, episodes, seed, progress=progress)
        entry["tasks"] = {t: v["successes"] for t, v in result["tasks"].items()}
        overall = result["overall"]
        entry["successes"], entry["episodes"] = overall["successes"], overall["episodes"]
        entry["success_rate"] = overall["success_rate"]
        entry["ci95"] = [round(x, 4) for x in wilson_interval(overall["successes"], overall["episodes"])]
        calls = np.array([ms for ms, _ in timed.times])
        entry["policy_ms_per_control_step"] = round(float(calls.sum() / max(sum(n for _, n in timed.times), 1)), 3)
        entry["median_ms_per_call"] = round(float(np.median(calls)), 3)
        report["chunks"][str(k)] = entry
    return report
