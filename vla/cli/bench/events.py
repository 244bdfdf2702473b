"""`vla bench events`: when the event trigger fires, scene by scene, for each trigger variant (vla.bench.events)."""

from __future__ import annotations

import argparse

from sim import resolve_tasks
from vla.bench.events import bench_events
from vla.cli.bench import add_report_argument
from vla.evaluate import write_report
from vla.loading import SHIPPED_POLICY


def add_arguments(parser: argparse.ArgumentParser) -> None:
    """`vla bench events` flags."""
    parser.add_argument("--policy", default=str(SHIPPED_POLICY), help="VLA policy directory (default: the shipped one)")
    parser.add_argument("--tasks", default="single", help="ids (comma-separated), single or all tabletop tasks")
    parser.add_argument("--seeds", type=int, default=10, help="seeds per task; every case runs on each")
    parser.add_argument("--seed", type=int, default=0, help="the first seed")
    parser.add_argument("--ticks", type=int, default=30, help="expert ticks of the arm-moving case")
    parser.add_argument("--move-after", type=int, default=12, help="expert ticks before the cube is moved mid-motion")
    parser.add_argument("--sparsity-config", default=None, help="YAML (default: configs/sparsity/default.yaml)")
    parser.add_argument("--quiet", action="store_true")
    add_report_argument(parser)


def run(args: argparse.Namespace) -> int:
    write_report(bench_events(args.policy, resolve_tasks(args.tasks), args.seeds, args.seed, args.sparsity_config,
                              args.ticks, args.move_after, progress=not args.quiet), args.report)
    return 0
