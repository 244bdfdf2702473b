"""`vla bench reuse`: one inference, dense vs with token reuse, on a model of a named size.

The shipped tiny policy's vision tower is about a quarter of its FLOPs, so re-encoding only the
changed patches saves little there. On a SmolVLM-256M-sized model (a SigLIP-B/16 tower at 512 px:
1,024 patches per camera) the tower is a real share, and random weights are valid for timing.

Each timed step, a fresh random set of `rate` x patches of every camera is repainted with new
noise: the event detector fires exactly those, the sparse encoder re-encodes them against the
cached keys and values of the rest, and the language model runs in full. The dense arm encodes
every patch of the same frames. Both run the eager fp32 model (the sparse path's precision),
batch 1, one chunk per step, on the device given; the rates to time are the change rates
`vla bench sparsity` measures in the sim (patches re-encoded per inference).
"""

from __future__ import annotations

import platform
from typing import Any

import numpy as np
import torch

from vla.bench.timing import latency_summary, random_model, time_calls
from vla.model.vla import VLAModel
from vla.policy import VLAPolicy
from vla.sparsity.policy import SparseVLAPolicy, SparsityConfig

# Patches re-encoded per inference in the sim, as fractions (`vla bench sparsity`, docs/BENCHMARKS.md):
# token reuse alone, inferring at every step, and the default event trigger, inferring when it fires.
SIM_RATES = (0.25, 0.42)


def time_reuse(model: VLAModel, device: torch.device, repeats: int, rates: tuple[float, ...],
               seed: int = 0, on_row=None) -> dict[str, Any]:
    """Rows `dense` and `reuse@<rate>` (latency of one inference, and patches re-encoded per step);
    `on_row(rows)` after each, so a run cut short keeps what it measured."""
    on_row = on_row or (lambda rows: None)
    cameras, size = list(model.config.cameras), model.vision_size
    rng = np.random.default_rng(seed)
    frames = {c: rng.integers(0, 256, (size, size, 3), dtype=np.uint8) for c in cameras}
    base = {"observation.state": np.zeros(model.config.state_dim, np.float32), "task": "pick up the red cube"}
    rows: dict[str, Any] = {}

    def step_obs(grid: int, k: int) -> dict[str, Any]:
        """The frames with k random patches per camera repainted (they stay so: the next step's
        reference is this step's frame)."""
        cell = size // grid
        for f in frames.values():
            for p in rng.choice(grid * grid, size=k, replace=False):
                r, c = divmod(int(p), grid)
                f[r * cell : (r + 1) * cell, c * cell : (c + 1) * cell] = rng.integers(0, 256, (cell, cell, 3))
        return {**base, **{f"observation.images.{c}": f.copy() for c, f in frames.items()}}

    dense = VLAPolicy(model, n_action_steps=1, fast=False)
    obs = {**base, **{f"observation.images.{c}": f for c, f in frames.items()}}
    times = time_calls(lambda: dense.predict_chunk(obs), repeats, warmup=2, device=device)
    rows["dense"] = {**latency_summary(times), "patches_recomputed": None}
    on_row(rows)
    for rate in rates:
        sparse = SparseVLAPolicy(model, SparsityConfig(trigger_threshold=0.0, max_open_loop=0))
        sparse.reset()
        grid = sparse.encoder.grid
        k = int(round(rate * grid * grid))
        steps = iter([step_obs(grid, k) for _ in range(repeats + 2)])  # made before timing: the step is timed alone
        times = time_calls(lambda s=sparse, o=steps: s.predict_chunk(next(o)), repeats, warmup=2, device=device)
        recomputed = [s["patches_recomputed"] for s in list(sparse.step_stats)[2:]]  # after the dense first step
        rows[f"reuse@{rate:g}"] = {**latency_summary(times), "patches_recomputed": float(np.mean(recomputed)),
                                   "patches_total": grid * grid * len(cameras)}
        on_row(rows)
    for name, row in rows.items():
        if name != "dense":
            row["speedup"] = round(rows["dense"]["median_ms"] / row["median_ms"], 3)
    return rows


def bench_reuse(size: str, rates: tuple[float, ...], repeats: int = 5, device: str | None = None,
                on_update=None) -> dict[str, Any]:
    on_update = on_update or (lambda report: None)
    device_t = torch.device(device or ("cuda" if torch.cuda.is_available() else "cpu"))
    name = torch.cuda.get_device_name(device_t) if device_t.type == "cuda" else \
        f"CPU ({platform.machine()}, {torch.get_num_threads()} torch threads)"
    report: dict[str, Any] = {"device": name, "torch": torch.__version__, "model": size, "repeats": repeats,
                              "rates": list(rates)}
    model = random_model(size).to(device_t)
    report["patch_grid"] = model.vision_size // model.hf.config.vision_config.patch_size

    def row(rows: dict[str, Any]) -> None:
        report["rows"] = rows
        on_update(report)

    time_reuse(model, device_t, repeats, rates, on_row=row)
    return report
