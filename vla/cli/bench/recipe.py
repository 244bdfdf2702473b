"""`vla bench recipe`: what limits the learned policy, one change per arm (vla.bench.recipe)."""

from __future__ import annotations

import argparse
import json

from sim import resolve_tasks
from vla.bench.recipe import ARMS, bench_recipe
from vla.cli.bench import add_report_argument
from vla.cli.bench.peers import add_training_arguments


def add_arguments(parser: argparse.ArgumentParser) -> None:
    """`vla bench recipe` flags."""
    parser.add_argument("--dataset", default=None, help="the LeRobot dataset every arm trains on (required)")
    parser.add_argument("--heldout", default=None,
                        help="a LeRobot dataset recorded from other seeds, for the open-loop error (required)")
    parser.add_argument("--arms", default="baseline,oracle", help=f"comma-separated arms of {sorted(ARMS)}")
    add_training_arguments(parser, train_steps=1500, episodes=20, out="out/recipe")
    parser.add_argument("--quiet", action="store_true")
    add_report_argument(parser)


def run(args: argparse.Namespace) -> int:
    if not args.dataset or not args.heldout:
        raise ValueError("vla bench recipe needs --dataset DIR (training) and --heldout DIR (other seeds)")
    report = bench_recipe(args.dataset, args.heldout, [a for a in args.arms.split(",") if a], args.train_steps,
                          args.episodes, resolve_tasks(args.tasks), args.out, args.batch_size, args.seed,
                          args.report, progress=not args.quiet)
    print(json.dumps({a: {k: r[k] for k in ("mean_success", "successes", "episodes", "samples_per_s")}
                      for a, r in report["arms"].items()}, indent=2))
    return 0
