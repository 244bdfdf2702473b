"""`vla bench sparsity`: dense vs event-sparse inference in closed loop (vla.bench.sparsity)."""

from __future__ import annotations

import argparse

from sim import resolve_tasks
from vla.bench.sparsity import bench_sparsity
from vla.cli.bench import add_report_argument
from vla.evaluate import write_report
from vla.loading import SHIPPED_POLICY


def add_arguments(parser: argparse.ArgumentParser) -> None:
    """`vla bench sparsity` flags."""
    parser.add_argument("--policy", default=str(SHIPPED_POLICY), help="VLA policy directory (default: the shipped one)")
    parser.add_argument("--tasks", default="single", help="ids (comma-separated), single, multi or all")
    parser.add_argument("--episodes", type=int, default=10, help="episodes per task, dense and sparse")
    parser.add_argument("--sweep-episodes", type=int, default=10, help="episodes per task per sweep point")
    parser.add_argument("--sparsity-config", default=None, help="YAML (default: configs/sparsity/default.yaml)")
    parser.add_argument("--plot", default=None, help="PNG of success vs speed-up over the threshold sweep")
    parser.add_argument("--still-steps", type=int, default=100,
                        help="control steps per task of the still-scene arms (the arm held, nothing moving)")
    parser.add_argument("--perturb-after", type=int, default=12,
                        help="control steps into each episode when the perturbed arms move the instruction's cube")
    parser.add_argument("--perturb-episodes", type=int, default=None,
                        help="episodes per task of the perturbed arms (default: --episodes; 0 skips them)")
    add_report_argument(parser)


def run(args: argparse.Namespace) -> int:
    write_report(bench_sparsity(args.policy, resolve_tasks(args.tasks), args.episodes,
                                sweep_episodes=args.sweep_episodes, config=args.sparsity_config, plot=args.plot,
                                still_steps=args.still_steps, perturb_after=args.perturb_after,
                                perturb_episodes=args.perturb_episodes),
                 args.report)
    return 0
