"""`vla bench peers`: our VLA vs LeRobot's ACT and Diffusion Policy, same data and steps (vla.bench.peers);
and the flags every train-then-score benchmark (peers, chunk, recipe) shares."""

from __future__ import annotations

import argparse

from sim import resolve_tasks
from vla.bench.peers import POLICIES, bench_peers
from vla.cli.bench import add_report_argument
from vla.cli.policy_args import duration
from vla.evaluate import write_report


def add_training_arguments(parser: argparse.ArgumentParser, train_steps: int, episodes: int, out: str) -> None:
    """The flags every train-then-score benchmark (peers, chunk, recipe) shares, with its defaults."""
    parser.add_argument("--train-steps", type=int, default=train_steps, help="optimizer steps per trained policy")
    parser.add_argument("--batch-size", type=int, default=32, help="samples per optimizer step")
    parser.add_argument("--tasks", default="single", help="closed-loop tasks: ids (comma-separated), single, multi")
    parser.add_argument("--episodes", type=int, default=episodes, help="closed-loop episodes per task (same seeds)")
    parser.add_argument("--seed", type=int, default=0, help="training seed and first episode seed")
    parser.add_argument("--out", default=out, help="where the trained policies go")


def add_arguments(parser: argparse.ArgumentParser) -> None:
    """`vla bench peers` flags."""
    parser.add_argument("--dataset", default=None, help="the LeRobot dataset all policies train on (required)")
    parser.add_argument("--policies", default=",".join(POLICIES),
                        help=f"which to train and score, comma-separated from {', '.join(POLICIES)}")
    parser.add_argument("--time-budget", type=duration, default=None,
                        help="train each policy this long (e.g. 40m) instead of --train-steps: same wall time")
    add_training_arguments(parser, train_steps=500, episodes=10, out="out/peers")
    add_report_argument(parser)


def run(args: argparse.Namespace) -> int:
    if not args.dataset:
        raise ValueError("vla bench peers needs --dataset DIR (a LeRobot dataset)")
    policies = tuple(p.strip() for p in args.policies.split(",") if p.strip())
    unknown = [p for p in policies if p not in POLICIES]
    if unknown or not policies:
        raise ValueError(f"--policies {args.policies!r}: unknown {unknown}; expected names from {', '.join(POLICIES)}")
    write_report(bench_peers(args.dataset, args.train_steps, args.episodes, resolve_tasks(args.tasks), out=args.out,
                             batch_size=args.batch_size, seed=args.seed, policies=policies,
                             time_budget_s=args.time_budget), args.report)
    return 0
