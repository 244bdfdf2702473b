"""`vla bench decoding`: one chunk for each action layout and decoding mode (vla.bench.decoding)."""

from __future__ import annotations

import argparse

from vla.bench.decoding import bench_decoding
from vla.cli.bench import add_report_argument
from vla.evaluate import write_report


def add_arguments(parser: argparse.ArgumentParser) -> None:
    """`vla bench decoding` flags."""
    parser.add_argument("--policy", default=None, help="policy directory (default: a fresh tiny model)")
    parser.add_argument("--repeats", type=int, default=20, help="timed chunks per mode")
    add_report_argument(parser)


def run(args: argparse.Namespace) -> int:
    write_report(bench_decoding(args.policy, args.repeats), args.report)
    return 0
