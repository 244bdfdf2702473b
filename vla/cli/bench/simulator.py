"""`vla bench sim`: simulator steps per second with every camera rendering, and its parts.

The measurement lives in `sim` (physics and rendering only, no torch: sim/tabletop/bench.py); this module
gives it its flags.
"""

from __future__ import annotations

import argparse

from sim.tabletop.bench import bench_sim
from vla.cli.bench import add_report_argument
from vla.evaluate import write_report


def add_arguments(parser: argparse.ArgumentParser) -> None:
    """`vla bench sim` flags."""
    parser.add_argument("--task", default="place_in_bowl", help="the task the scripted expert drives")
    parser.add_argument("--control-steps", type=int, default=500, help="control ticks the expert drives and times")
    parser.add_argument("--image-size", type=int, default=None, help="square camera images (default: robot config)")
    add_report_argument(parser)


def run(args: argparse.Namespace) -> int:
    write_report(bench_sim(args.task, args.control_steps, args.image_size), args.report)
    return 0
