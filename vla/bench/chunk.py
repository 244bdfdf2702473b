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

import argparse
from pathlib import Path
from typing import Any

from vla.bench.peers import add_training_arguments, machine, score, vla_train_config
from vla.train.trainer import train
from vla.train.validate import open_loop_error


def bench_chunk(dataset: str | Path, heldout: str | Path, chunks: list[int], steps: int, episodes: int,
                tasks: list[str], out: str | Path = "out/chunk", batch_size: int = 32, seed: int = 0,
                progress: bool = True) -> dict[str, Any]:
    import sim
    from vla.policy import VLAPolicy

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


def add_arguments(parser: argparse.ArgumentParser) -> None:
    """`vla bench chunk` flags."""
    parser.add_argument("--dataset", default=None, help="the LeRobot dataset every K trains on (required)")
    parser.add_argument("--heldout", default=None,
                        help="a LeRobot dataset recorded from other seeds, for the open-loop error (required)")
    parser.add_argument("--chunks", type=_lengths, default=[4, 10, 20],
                        help="comma-separated chunk lengths K (default 4,10,20)")
    add_training_arguments(parser, train_steps=500, episodes=10, out="out/chunk")


def _lengths(text: str) -> list[int]:
    try:
        return [int(k) for k in text.split(",")]
    except ValueError:
        raise argparse.ArgumentTypeError(f"{text!r}: expected comma-separated integers such as 4,10,20") from None


def run(args: argparse.Namespace) -> int:
    from sim import resolve_tasks
    from vla.evaluate import write_report

    if not args.dataset or not args.heldout:
        raise ValueError("vla bench chunk needs --dataset DIR (training) and --heldout DIR (other seeds)")
    write_report(bench_chunk(args.dataset, args.heldout, args.chunks, args.train_steps, args.episodes,
                             resolve_tasks(args.tasks), out=args.out, batch_size=args.batch_size, seed=args.seed),
                 args.report)
    return 0
