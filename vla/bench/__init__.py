"""Benchmarks behind `vla bench` and docs/BENCHMARKS.md: the measurements. Scripts, not tests.

They compose the parts (policy, simulator, server, ROS nodes), so they live here rather than
in the light packages (vla.serving, vla.control) that must not import torch.

Each `vla/bench/<name>.py` holds its measurement as plain functions with explicit parameters
(`bench_<name>(...) -> dict`, the report). The command line (flags, argument checks, building what
they name, writing the report) is `vla/cli/bench/<name>.py`'s, listed in vla.cli.bench's BENCHMARKS.
"""
