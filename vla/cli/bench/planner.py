"""`vla bench planner`: flat policy vs planner, re-planning after a perturbation (vla.bench.planner)."""

from __future__ import annotations

import argparse

from sim import make_env, resolve_tasks
from vla.bench.planner import ARMS, bench_planner
from vla.cli.bench import add_report_argument
from vla.evaluate import write_report
from vla.loading import POLICY_KINDS, SHIPPED_POLICY, policy_factory


def add_arguments(parser: argparse.ArgumentParser) -> None:
    """`vla bench planner` flags."""
    parser.add_argument("--planner", default=None,
                        help="the planner checkpoint, from `vla train --objective planner` (required)")
    parser.add_argument("--policy", default=str(SHIPPED_POLICY),
                        help=f"the executor: {POLICY_KINDS} (default: the shipped VLA)")
    parser.add_argument("--tasks", default="multi", help="ids (comma-separated), single, multi or all")
    parser.add_argument("--episodes", type=int, default=10, help="episodes per task per arm")
    parser.add_argument("--seed", type=int, default=0, help="first episode seed")
    parser.add_argument("--candidates", type=int, default=4, help="System-2 candidate plans")
    parser.add_argument("--arms", default=",".join(ARMS), help="comma-separated arms (default: all)")
    parser.add_argument("--heldout-episodes", type=int, default=20,
                        help="held-out episodes per task for plan/world/describe/critic accuracy")
    parser.add_argument("--image-size", type=int, default=None, help="square camera images (default: robot config)")
    add_report_argument(parser)


def run(args: argparse.Namespace) -> int:
    if not args.planner:
        raise ValueError("vla bench planner needs --planner DIR (a checkpoint from `vla train --objective planner`)")
    write_report(bench_planner(
        args.planner, args.policy, lambda t: make_env(t, image_size=args.image_size), policy_factory(args.policy),
        resolve_tasks(args.tasks), args.episodes, seed=args.seed, candidates=args.candidates,
        arms=args.arms.split(","), heldout_episodes=args.heldout_episodes,
    ), args.report)
    return 0
