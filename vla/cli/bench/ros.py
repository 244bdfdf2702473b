"""`vla bench rosbag` and `vla bench ros-record`: one module, two benchmarks; `run` reads which was parsed
(vla.bench.ros)."""

from __future__ import annotations

import argparse

from vla.bench.ros import bench_ros_recording, bench_rosbag
from vla.cli.bench import add_report_argument
from vla.evaluate import write_report

DEFAULT_SECONDS = {"rosbag": 30.0, "ros-record": 20.0}


def add_arguments(parser: argparse.ArgumentParser) -> None:
    """`vla bench rosbag` and `vla bench ros-record` flags."""
    parser.add_argument("--duration", type=float, default=None,
                        help="seconds: of the bag (rosbag, default 30), of the recording (ros-record, default 20)")
    add_report_argument(parser)


def run(args: argparse.Namespace) -> int:
    seconds = args.duration or DEFAULT_SECONDS[args.benchmark]
    report = bench_rosbag(seconds) if args.benchmark == "rosbag" else bench_ros_recording(seconds)
    write_report(report, args.report)
    return 0
