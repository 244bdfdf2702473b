"""`vla bench decoding`: one chunk by parallel vs autoregressive decoding, same model, same inputs, same run."""

from __future__ import annotations

import argparse
import platform
import statistics
import time
from pathlib import Path

import numpy as np
import torch

from vla.model.vla import Batch, VLAModel


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


def bench_decoding(policy: str | Path | None = None, repeats: int = 20, device: str | None = None) -> dict:
    """Latency of producing one action chunk (batch 1) in both modes, with the shipped or a fresh tiny model."""
    device = device or ("cuda" if torch.cuda.is_available() else "cpu")
    if policy:
        model = VLAModel.from_pretrained(policy, device=device)
        name = str(policy)
    else:
        from vla.model.config import load_model_config
        from vla.model.vla import new_model

        cfg = load_model_config("tiny", cameras=["scene", "wrist"], state_dim=8, action_dim=8)
        model = new_model(cfg, ["pick up the red cube"], -np.ones(8), np.ones(8), -np.ones(8), np.ones(8))
        model = model.to(device).eval()
        name = "tiny (random weights)"
    cfg = model.config
    g = torch.Generator().manual_seed(0)
    S = model.vision_size
    batch = Batch(torch.rand(1, len(cfg.cameras), 3, S, S, generator=g).to(device), ["pick up the red cube"],
                  torch.zeros(1, cfg.state_dim, device=device))

    def run(mode):
        model.decode(batch, mode)
        if device == "cuda":
            torch.cuda.synchronize()

    modes = {}
    for mode in ("parallel", "autoregressive"):
        times = time_calls(lambda m=mode: run(m), repeats)
        modes[mode] = {"median_ms": round(statistics.median(times), 3),
                       "p90_ms": round(float(np.percentile(times, 90)), 3)}
    parallel, autoregressive = modes["parallel"]["median_ms"], modes["autoregressive"]["median_ms"]
    return {
        "policy": name,
        "action_tokens_per_chunk": cfg.num_action_tokens,
        "chunk": [cfg.chunk_size, cfg.action_dim],
        "parallel_ms": parallel,
        "autoregressive_ms": autoregressive,
        "speedup": round(autoregressive / parallel, 2),
        "modes": modes,
        "repeats": repeats,
        "device": torch.cuda.get_device_name() if device == "cuda" else f"CPU ({platform.machine()}, "
                                                                             f"{torch.get_num_threads()} threads)",
        "parameters": sum(p.numel() for p in model.parameters()),
    }


def add_arguments(parser: argparse.ArgumentParser) -> None:
    """`vla bench decoding` flags."""
    parser.add_argument("--policy", default=None, help="policy directory (default: a fresh tiny model)")
    parser.add_argument("--repeats", type=int, default=20, help="timed chunks per mode")


def run(args: argparse.Namespace) -> int:
    from vla.evaluate import write_report

    write_report(bench_decoding(args.policy, args.repeats), args.report)
    return 0
