"""`vla bench gpu`: the onboard-GPU inference path, latency and memory (vla.bench.gpu)."""

from __future__ import annotations

import argparse
from typing import Any

from vla.bench.gpu import bench_gpu
from vla.cli.bench import add_report_argument
from vla.evaluate import write_report
from vla.loading import SHIPPED_POLICY


def add_arguments(parser: argparse.ArgumentParser) -> None:
    """`vla bench gpu` flags."""
    parser.add_argument("--policy", default=str(SHIPPED_POLICY), help="VLA policy directory (default: the shipped one)")
    parser.add_argument("--repeats", type=int, default=20, help="timed steps per configuration")
    parser.add_argument("--ar-repeats", type=int, default=None,
                        help="timed steps for autoregressive decoding (default: --repeats; it is ~20x slower)")
    add_report_argument(parser)


def run(args: argparse.Namespace) -> int:
    def update(report: dict[str, Any]) -> None:  # each figure is on disk as soon as it exists
        write_report(report, args.report, quiet=True)
        latency = report.get("latency", {})
        done = sum(len(rows) for rows in latency.values())
        print(f"bench gpu: {report['device']}: {done} latency rows", flush=True)

    write_report(bench_gpu(args.policy, args.repeats, ar_repeats=args.ar_repeats, on_update=update), args.report)
    return 0
