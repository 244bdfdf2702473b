"""`vla bench reuse`: one inference dense vs with token reuse, on a model of a named size (vla.bench.reuse)."""

from __future__ import annotations

import argparse
from typing import Any

from vla.bench.gpu import SIZES
from vla.bench.reuse import SIM_RATES, bench_reuse
from vla.cli.bench import add_report_argument
from vla.evaluate import write_report


def add_arguments(parser: argparse.ArgumentParser) -> None:
    """`vla bench reuse` flags."""
    parser.add_argument("--size", default="smolvlm-256m", choices=["tiny", *SIZES],
                        help="model config (random weights)")
    parser.add_argument("--rates", default=",".join(f"{r:g}" for r in SIM_RATES),
                        help="fractions of each camera's patches that change per step (comma-separated)")
    parser.add_argument("--repeats", type=int, default=5, help="timed steps per row")
    parser.add_argument("--device", default=None, help="cpu or cuda (default: cuda when there is one)")
    add_report_argument(parser)


def run(args: argparse.Namespace) -> int:
    try:
        rates = tuple(float(r) for r in args.rates.split(","))
    except ValueError:
        raise SystemExit(f"--rates {args.rates!r}: expected comma-separated fractions, e.g. 0.25,0.5") from None
    if not all(0 <= r <= 1 for r in rates):
        raise SystemExit(f"--rates {args.rates!r}: each rate is a fraction of the patches, in [0, 1]")

    def update(report: dict[str, Any]) -> None:  # each row is on disk as soon as it exists
        write_report(report, args.report, quiet=True)
        print(f"bench reuse: {report['device']}: {len(report.get('rows', {}))} rows", flush=True)

    write_report(bench_reuse(args.size, rates, args.repeats, args.device, on_update=update), args.report)
    return 0
