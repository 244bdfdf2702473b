"""`vla bench decoding`: one chunk for each action layout (bins per value, bins per step, continuous per step) and
each decoding mode it has (parallel; autoregressive for bins per value), same backbone, same inputs, same run."""

from __future__ import annotations

import platform
import statistics
from dataclasses import replace
from pathlib import Path

import numpy as np
import torch

from vla.bench.timing import time_calls
from vla.model.config import load_model_config
from vla.model.vla import Batch, VLAModel, new_model

LAYOUTS = (  # (action_head, action_tokens): every way the action positions can be laid out and decoded
    ("bins", "per_dim"), ("bins", "per_step"), ("continuous", "per_step"))


def bench_decoding(policy: str | Path | None = None, repeats: int = 20, device: str | None = None) -> dict:
    """Latency of producing one action chunk (batch 1) for each action layout on one backbone, in each
    decoding mode the layout has: the policy's own layout with its weights, the others (or all, with no
    policy) built fresh from the same config. The time per position does not depend on the weights."""
    device = device or ("cuda" if torch.cuda.is_available() else "cpu")
    trained = VLAModel.from_pretrained(policy, device=device) if policy else None
    base = trained.config if trained else load_model_config("tiny", cameras=["scene", "wrist"], state_dim=8,
                                                               action_dim=8)
    one = np.ones(base.action_dim)
    rows = []
    for head, tokens in LAYOUTS:
        if trained is not None and (head, tokens) == (base.action_head, base.action_tokens):
            model, weights = trained, "trained"
        else:
            # the same backbone: the config's tiny one, or the policy's local checkpoint loaded again
            cfg = replace(base, action_head=head, action_tokens=tokens, decoding="parallel", aux_targets=[])
            model, weights = new_model(cfg, ["pick up the red cube"], -one, one, -np.ones(base.state_dim),
                                       np.ones(base.state_dim)).to(device).eval(), "random"

        S = model.vision_size
        images = torch.rand(1, len(base.cameras), 3, S, S, generator=torch.Generator().manual_seed(0))
        batch = Batch(images.to(device), ["pick up the red cube"], torch.zeros(1, base.state_dim, device=device))

        def run(mode, m=model, batch=batch):
            m.decode(batch, mode)
            if device == "cuda":
                torch.cuda.synchronize()

        for mode in model.config.decoding_modes:
            times = time_calls(lambda m=mode: run(m), repeats)
            rows.append({"action_head": head, "action_tokens": tokens, "mode": mode, "weights": weights,
                         "action_positions": model.config.num_action_tokens,
                         "median_ms": round(statistics.median(times), 3),
                         "p90_ms": round(float(np.percentile(times, 90)), 3)})
    by = {(r["action_head"], r["action_tokens"], r["mode"]): r["median_ms"] for r in rows}
    per_dim = by["bins", "per_dim", "parallel"]
    return {
        "policy": str(policy) if policy else "tiny (random weights)",
        "chunk": [base.chunk_size, base.action_dim],
        "layouts": rows,
        # the two modes of the one layout that has both, and the per-step layouts against its parallel pass
        "autoregressive_over_parallel": round(by["bins", "per_dim", "autoregressive"] / per_dim, 2),
        "per_dim_over_per_step": round(per_dim / by["continuous", "per_step", "parallel"], 2),
        "repeats": repeats,
        "device": torch.cuda.get_device_name() if device == "cuda" else f"CPU ({platform.machine()}, "
                                                                             f"{torch.get_num_threads()} threads)",
        "parameters": sum(p.numel() for p in (trained or model).parameters()),
    }
