"""`vla bench chunk`: the chunk length K by measurement, open and closed loop (vla.bench.chunk)."""

from __future__ import annotations

import argparse

from sim import resolve_tasks
from vla.bench.chunk import bench_chunk
from vla.cli.bench import add_report_argument
from vla.cli.bench.peers import add_training_arguments
from vla.evaluate import write_report


def _lengths(text: str) -> list[int]:
    try:
        return [int(k) for k in text.split(",")]
    except ValueError:
        raise argparse.ArgumentTypeError(f"{text!r}: expected comma-separated integers such as 4,10,20") from None


def add_arguments(parser: argparse.ArgumentParser) -> None:
    """`vla bench chunk` flags."""
    parser.add_argument("--dataset", default=None, help="the LeRobot dataset every K trains on (required)")
    parser.add_argument("--heldout", default=None,
                        help="a LeRobot dataset recorded from other seeds, for the open-loop error (required)")
    parser.add_argument("--chunks", type=_lengths, default=[4, 10, 20],
                        help="comma-separated chunk lengths K (default 4,10,20)")
    add_training_arguments(parser, train_steps=500, episodes=10, out="out/chunk")
    add_report_argument(parser)


def run(args: argparse.Namespace) -> int:
    if not args.dataset or not args.heldout:
        raise ValueError("vla bench chunk needs --dataset DIR (training) and --heldout DIR (other seeds)")
    write_report(bench_chunk(args.dataset, args.heldout, args.chunks, args.train_steps, args.episodes,
                             resolve_tasks(args.tasks), out=args.out, batch_size=args.batch_size, seed=args.seed),
                 args.report)
    return 0
