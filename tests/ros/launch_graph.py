"""The launch-file reader lives in the package (`vla bench ros-eval` starts graphs with it too)."""

from vla.bench.launch_graph import PACKAGE_SRC, LaunchGraph, call_trigger, ros_env, wait_for

__all__ = ["PACKAGE_SRC", "LaunchGraph", "call_trigger", "ros_env", "wait_for"]
