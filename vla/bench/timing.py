"""What the timing benchmarks share (`decoding`, `gpu`, `reuse`): timed calls, their summary, and a model
of a named size with random weights (valid for timing; nothing downloaded)."""

from __future__ import annotations

import statistics
import time

import numpy as np
import torch

from vla.model.config import load_model_config
from vla.model.vla import VLAModel, new_model


def time_calls(fn, repeats: int, warmup: int = 1, device: torch.device | None = None) -> list[float]:
    """Milliseconds of each of `repeats` calls after `warmup` untimed ones (allocations, kernels,
    compilation); on CUDA the device is idle when each timing starts."""
    for _ in range(warmup):
        fn()
    times = []
    for _ in range(repeats):
        if device is not None and device.type == "cuda":
            torch.cuda.synchronize()
        start = time.perf_counter()
        fn()
        times.append((time.perf_counter() - start) * 1000)
    return times


def latency_summary(times: list[float]) -> dict[str, float]:
    """Median and 99th percentile in ms, and the control rate the median allows."""
    med = statistics.median(times)
    return {"median_ms": round(med, 3), "p99_ms": round(float(np.percentile(times, 99)), 3),
            "achievable_hz": round(1000.0 / med, 1)}


def random_model(name: str, cameras=("scene", "wrist"), state_dim: int = 8, action_dim: int = 8) -> VLAModel:
    """A VLA of a named size with random weights (tokenizer built from a few instructions)."""
    cfg = load_model_config(name, cameras=list(cameras), state_dim=state_dim, action_dim=action_dim)
    ones = np.ones(action_dim)
    return new_model(cfg, ["pick up the red cube", "push the blue cube to the left"], -ones, ones,
                     -np.ones(state_dim), np.ones(state_dim)).eval()
