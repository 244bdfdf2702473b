"""`vla bench ros-eval`: the same seeds through the ROS graph and `vla eval`, and the command gap
(vla.bench.ros_eval)."""

from __future__ import annotations

import argparse

from sim import resolve_tasks
from vla.bench.ros_eval import bench_ros_eval
from vla.cli.bench import add_report_argument
from vla.evaluate import write_report
from vla.robot import load_robot_config


def add_arguments(parser: argparse.ArgumentParser) -> None:
    """`vla bench ros-eval` flags."""
    parser.add_argument("--policy", default="policies/tiny_sim_single", help="policy folder")
    parser.add_argument("--robot", default="panda", help="robot config name or YAML path (a joint-position robot)")
    parser.add_argument("--tasks", default="pick", help="single-step task ids, comma-separated (or single)")
    parser.add_argument("--episodes", type=int, default=13, help="seeds per task")
    parser.add_argument("--seed", type=int, default=0, help="the first seed")
    parser.add_argument("--timeout", type=float, default=900.0, help="seconds per task for the ROS run")
    parser.add_argument("--refill-threshold", type=int, default=None,
                        help="the policy node's refill_threshold (default: sim_bringup's, 2; `vla eval` runs 0)")
    parser.add_argument("--blend", type=int, default=None,
                        help="the policy node's blend (default: sim_bringup's, 2; `vla eval` runs 0)")
    add_report_argument(parser)


def run(args: argparse.Namespace) -> int:
    if args.episodes < 1:
        raise ValueError(f"--episodes {args.episodes}; expected at least 1")
    robot = load_robot_config(args.robot)
    if not robot.joint_actions:
        raise ValueError(f"--robot {args.robot}: the ROS graph drives joint-position robots; {robot.name!r} is not one")
    report = bench_ros_eval(args.policy, resolve_tasks(args.tasks), args.episodes, args.seed, args.robot,
                            args.timeout, args.refill_threshold, args.blend)
    write_report(report, args.report)
    return 0
