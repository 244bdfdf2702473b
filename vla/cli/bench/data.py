"""`vla bench data`: recording throughput, size on disk and loader throughput (vla.bench.data)."""

from __future__ import annotations

import argparse

from sim import resolve_tasks
from vla.bench.data import bench_data
from vla.cli.bench import add_report_argument
from vla.evaluate import write_report


def add_arguments(parser: argparse.ArgumentParser) -> None:
    """`vla bench data` flags."""
    parser.add_argument("--tasks", default="single", help="ids (comma-separated), single, multi or all")
    parser.add_argument("--episodes", type=int, default=10, help="episodes recorded per task")
    parser.add_argument("--image-size", type=int, default=None, help="square camera images (default: robot config)")
    add_report_argument(parser)


def run(args: argparse.Namespace) -> int:
    write_report(bench_data(resolve_tasks(args.tasks), args.episodes, args.image_size), args.report)
    return 0
