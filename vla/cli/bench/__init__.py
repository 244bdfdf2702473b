"""`vla bench`: the benchmarks behind docs/BENCHMARKS.md. Scripts, not tests.

Each `vla bench <name>` has its module here (BENCHMARKS): `add_arguments(parser)` declares its flags (ending
with `add_report_argument`) and `run(args) -> int` checks them, builds what they name, runs the measurement
of `vla.bench.<name>` and writes its report. The module is imported only when its benchmark is parsed
(vla.cli.lazy), so that `vla tasks` or `vla client` do not pay for torch.
"""

from __future__ import annotations

import argparse

from vla.cli.lazy import LazyParser

# name -> (module, one-line help). `rosbag` and `ros-record` share a module; its run() reads args.benchmark.
BENCHMARKS: dict[str, tuple[str, str]] = {
    "sim": ("vla.cli.bench.simulator", "simulator steps per second with every camera rendering, and its parts"),
    "data": ("vla.cli.bench.data", "recording throughput, size on disk and loader throughput"),
    "decoding": ("vla.cli.bench.decoding", "one chunk by parallel vs autoregressive decoding"),
    "serving": ("vla.cli.bench.serving", "what ZeroMQ and ROS 2 add over in-process inference, and missed ticks"),
    "handover": ("vla.cli.bench.handover", "joint steps at chunk hand-overs, with and without cross-fading"),
    "rosbag": ("vla.cli.bench.ros", "rosbag2 to LeRobot conversion speed"),
    "ros-record": ("vla.cli.bench.ros", "the ROS 2 recorder node's sustained rate with two cameras at 30 Hz"),
    "ros-eval": ("vla.cli.bench.ros_eval",
                 "the same seeds through the ROS graph and `vla eval`, and the command gap"),
    "sparsity": ("vla.cli.bench.sparsity", "dense vs event-sparse inference in closed loop"),
    "events": ("vla.cli.bench.events", "when the event trigger fires: a cube moved, the arm moving, the lights"),
    "reuse": ("vla.cli.bench.reuse", "one inference dense vs with token reuse, on a model of a named size"),
    "gpu": ("vla.cli.bench.gpu", "the onboard-GPU inference path: latency and memory"),
    "peers": ("vla.cli.bench.peers", "our VLA vs LeRobot's ACT and Diffusion Policy, same data and steps"),
    "planner": ("vla.cli.bench.planner", "flat policy vs planner, re-planning after a perturbation"),
    "chunk": ("vla.cli.bench.chunk", "the chunk length K by measurement, open and closed loop"),
    "recipe": ("vla.cli.bench.recipe", "what limits the learned policy: one change per arm, open and closed loop"),
    "oracle-mlp": ("vla.cli.bench.oracle",
                   "what the demonstrations teach a plain MLP that sees every object's position"),
}


def add_report_argument(parser: argparse.ArgumentParser) -> None:
    """`--report`, which every benchmark takes (its last flag)."""
    parser.add_argument("--report", default=None, help="write the JSON report here (it is printed too)")


def add_bench_parsers(bench: argparse.ArgumentParser) -> dict[str, LazyParser]:
    """One `vla bench <name>` subcommand per benchmark; returns them by name."""
    sub = bench.add_subparsers(dest="benchmark", required=True, metavar="BENCHMARK", parser_class=LazyParser)
    return {name: sub.add_parser(name, help=text, description=text, module=module)
            for name, (module, text) in BENCHMARKS.items()}
