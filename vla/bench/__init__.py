"""Benchmarks behind `vla bench` and docs/BENCHMARKS.md. Scripts, not tests.

They compose the parts (policy, simulator, server, ROS nodes), so they live here rather than
in the light packages (vla.serving, vla.control) that must not import torch.
"""
