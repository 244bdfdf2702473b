"""`vla bench chunk`: choose the chunk length K by measurement.

For each K, the default tiny VLA is trained on the same dataset with the same optimizer steps,
batch, seed and recipe (`n_action_steps = K // 2`, the shipped ratio: half of each chunk runs
before the next inference). Each is then scored two ways:

- open loop, on a held-out LeRobot dataset recorded from other seeds: the mean absolute error of
  the predicted joint targets against the demonstration's, over the first action and over the
  actions that would run (`n_action_steps`), arm joints in milliradians and the gripper apart;
- closed loop, with the `vla eval` harness: success per task on the same seeded episodes, and
  the policy's time per control step (a longer chunk means fewer inferences per second).
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import sim
from vla.bench.peers import machine, score, vla_train_config
from vla.policy import VLAPolicy
from vla.train.trainer import train
from vla.train.validate import open_loop_error


def bench_chunk(dataset: str | Path, heldout: str | Path, chunks: list[int], steps: int, episodes: int,
                tasks: list[str], out: str | Path = "out/chunk", batch_size: int = 32, seed: int = 0,
                progress: bool = True) -> dict[str, Any]:
    out = Path(out)
    if any(k < 2 for k in chunks):
        raise ValueError(f"chunk lengths {chunks}: each must be >= 2 (half of it is executed)")
    taken = [str(out / f"k{k}") for k in chunks if (out / f"k{k}").exists()]
    if taken:
        raise FileExistsError(f"{', '.join(taken)} already exist; remove them or pass another --out")
    report: dict[str, Any] = {
        "dataset": str(dataset), "heldout": str(heldout), "steps": steps, "batch_size": batch_size,
        "episodes_per_task": episodes, "seed": seed, "tasks": tasks,
        "machine": machine(),
        "chunks": {},
    }
    for k in chunks:
        summary = train(dataset, out / f"k{k}", "tiny", vla_train_config(steps, batch_size, seed), progress=progress,
                        model_overrides={"chunk_size": k, "n_action_steps": k // 2})
        policy = VLAPolicy.from_pretrained(out / f"k{k}")
        report["chunks"][str(k)] = {
            "n_action_steps": k // 2, "train_wall_time_s": summary["wall_time_s"], "parameters": summary["parameters"],
            "open_loop": open_loop_error(policy.model, heldout),
            **score(f"k{k}", policy, tasks, sim.make_env, episodes, seed, progress),
        }
    return report
