"""Benchmarks behind `vla bench` and docs/BENCHMARKS.md. Scripts, not tests.

They compose the parts (policy, simulator, server, ROS nodes), so they live here rather than
in the light packages (vla.serving, vla.control) that must not import torch.

Each `vla bench <name>` is owned by its module: `add_arguments(parser)` declares its flags and
`run(args) -> int` runs it and writes its report. The module is imported only when its benchmark
is parsed, so that `vla tasks` or `vla client` do not pay for torch.
"""

from __future__ import annotations

import argparse
import importlib

# name -> (module, one-line help). `rosbag` and `ros-record` share a module; its run() reads args.benchmark.
BENCHMARKS: dict[str, tuple[str, str]] = {
    "sim": ("vla.bench.simulator", "simulator steps per second with every camera rendering, and its parts"),
    "data": ("vla.bench.data", "recording throughput, size on disk and loader throughput"),
    "decoding": ("vla.bench.decoding", "one chunk by parallel vs autoregressive decoding"),
    "serving": ("vla.bench.serving", "what ZeroMQ and ROS 2 add over in-process inference, and missed ticks"),
    "handover": ("vla.bench.handover", "joint steps at chunk hand-overs, with and without cross-fading"),
    "rosbag": ("vla.bench.ros", "rosbag2 to LeRobot conversion speed"),
    "ros-record": ("vla.bench.ros", "the ROS 2 recorder node's sustained rate with two cameras at 30 Hz"),
    "ros-eval": ("vla.bench.ros_eval", "the same seeds through the ROS graph and `vla eval`, and the command gap"),
    "sparsity": ("vla.bench.sparsity", "dense vs event-sparse inference in closed loop"),
    "reuse": ("vla.bench.reuse", "one inference dense vs with token reuse, on a model of a named size"),
    "gpu": ("vla.bench.gpu", "the onboard-GPU inference path: latency and memory"),
    "peers": ("vla.bench.peers", "our VLA vs LeRobot's ACT and Diffusion Policy, same data and steps"),
    "planner": ("vla.bench.planner", "flat policy vs planner, re-planning after a perturbation"),
    "chunk": ("vla.bench.chunk", "the chunk length K by measurement, open and closed loop"),
    "recipe": ("vla.bench.recipe", "what limits the learned policy: one change per arm, open and closed loop"),
    "oracle-mlp": ("vla.bench.oracle", "what the demonstrations teach a plain MLP that sees every object's position"),
}


class BenchParser(argparse.ArgumentParser):
    """The parser of one benchmark: its module adds the flags the first time it parses."""

    def __init__(self, *args, module: str, **kwargs):
        super().__init__(*args, **kwargs)
        self.module, self.loaded = module, False

    def load(self) -> None:
        """Import the benchmark's module and add its flags (once)."""
        if not self.loaded:
            bench = importlib.import_module(self.module)
            bench.add_arguments(self)
            self.add_argument("--report", default=None, help="write the JSON report here (it is printed too)")
            self.set_defaults(func=bench.run)
            self.loaded = True

    def parse_known_args(self, args=None, namespace=None):
        self.load()
        namespace, extras = super().parse_known_args(args, namespace)
        if extras:  # said here, with this benchmark's usage, rather than by `vla` with its own
            self.error(f"unrecognized arguments: {' '.join(extras)} (see {self.prog} --help)")
        return namespace, extras


def add_bench_parsers(bench: argparse.ArgumentParser) -> dict[str, BenchParser]:
    """One `vla bench <name>` subcommand per benchmark; returns them by name."""
    sub = bench.add_subparsers(dest="benchmark", required=True, metavar="BENCHMARK", parser_class=BenchParser)
    return {name: sub.add_parser(name, help=text, description=text, module=module)
            for name, (module, text) in BENCHMARKS.items()}
