"""`vla bench serving`: what ZeroMQ and ROS 2 add over in-process inference, and missed ticks
(vla.bench.serving)."""

from __future__ import annotations

import argparse

from vla.bench.serving import bench_serving
from vla.cli.bench import add_report_argument
from vla.evaluate import write_report
from vla.loading import SHIPPED_POLICY


def add_arguments(parser: argparse.ArgumentParser) -> None:
    """`vla bench serving` flags."""
    parser.add_argument("--policy", default=str(SHIPPED_POLICY), help="VLA policy directory (default: the shipped one)")
    parser.add_argument("--duration", type=float, default=300.0, help="seconds of the 20 Hz control loop")
    add_report_argument(parser)


def run(args: argparse.Namespace) -> int:
    write_report(bench_serving(args.policy, duration=args.duration), args.report)
    return 0
