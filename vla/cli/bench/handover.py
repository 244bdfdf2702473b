"""`vla bench handover`: joint steps at chunk hand-overs, with and without cross-fading (vla.bench.handover)."""

from __future__ import annotations

import argparse

from vla.bench.handover import bench_handover
from vla.cli.bench import add_report_argument
from vla.evaluate import write_report
from vla.loading import SHIPPED_POLICY


def add_arguments(parser: argparse.ArgumentParser) -> None:
    """`vla bench handover` flags."""
    parser.add_argument("--policy", default=str(SHIPPED_POLICY), help="VLA policy directory (default: the shipped one)")
    parser.add_argument("--task", default="place_in_bowl", help="the task the policy drives")
    parser.add_argument("--episodes", type=int, default=10, help="episodes per blend setting")
    add_report_argument(parser)


def run(args: argparse.Namespace) -> int:
    write_report(bench_handover(args.policy, args.task, args.episodes), args.report)
    return 0
