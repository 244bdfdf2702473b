"""`python -m vla.cli.bench.ros_publishers arm|cameras ...`: the ROS 2 publishers of vla.bench.ros_publishers
in a child process of `vla bench ros-record` and `vla bench serving`, so that sending and receiving do not share
one interpreter."""

from __future__ import annotations

import argparse

from vla.bench.ros_publishers import publish_arm, publish_cameras


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(prog="python -m vla.cli.bench.ros_publishers",
                                     description="the benchmarks' ROS 2 publishers, in a child process")
    sub = parser.add_subparsers(dest="what", required=True)
    arm = sub.add_parser("arm", help="cameras, joint states and commands at 30 Hz")
    arm.add_argument("--seconds", type=float, required=True)
    arm.add_argument("--size", type=int, default=128, help="image height and width")
    arm.add_argument("--robot", default="panda", help="configs/robots/<name>.yaml")
    cams = sub.add_parser("cameras", help="two wall-clock-stamped cameras")
    cams.add_argument("--seconds", type=float, required=True)
    cams.add_argument("--size", type=int, default=128, help="image height and width")
    cams.add_argument("--hz", type=float, default=30.0)
    args = parser.parse_args(argv)
    if args.what == "arm":
        publish_arm(args.seconds, args.size, args.robot)
    else:
        publish_cameras(args.seconds, args.size, args.hz)


if __name__ == "__main__":
    main()
