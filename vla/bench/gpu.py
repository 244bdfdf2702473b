"""`vla bench gpu`: the onboard-GPU inference path, measured in one run on one card.

Per-step latency (median, p99) and the control rate it allows, for the shipped tiny policy and
a SmolVLM-256M-sized config (random weights, nothing downloaded): eager fp32, bf16, and bf16 +
compile/CUDA graphs; parallel vs autoregressive decoding; dense vs token reuse at the sim's
change rates. Plus model memory (weights, KV cache, activations) for those and a 2B-sized config.

Runs on CPU too (as the tests do, with few repeats): the report names the device, and a CPU
figure is never a GPU figure.
"""

from __future__ import annotations

import copy
import platform
from pathlib import Path
from typing import Any

import numpy as np
import torch
from transformers import AutoModelForImageTextToText

from vla.bench.reuse import SIM_RATES, time_reuse
from vla.bench.timing import latency_summary, random_model, time_calls
from vla.model.backbone import backbone_config
from vla.model.config import VLAConfig, load_model_config
from vla.model.fast import FastVLA
from vla.model.vla import VLAModel

SIZES = ("smolvlm-256m", "smolvlm-2b")
VOCAB = 49280  # SmolVLM's vocabulary, for realistic embedding sizes in the memory figures


def memory(cfg: VLAConfig, dtype_bytes: int = 2, vocab: int = VOCAB) -> dict[str, float]:
    """Weights and KV cache in MiB for a config, counted on the meta device (nothing allocated)."""
    hf_cfg = backbone_config(cfg, vocab, 0, 1, 2, 3)
    with torch.device("meta"):
        hf = AutoModelForImageTextToText.from_config(hf_cfg)
    params = sum(p.numel() for p in hf.parameters())
    text = hf_cfg.text_config
    head_dim = getattr(text, "head_dim", None) or text.hidden_size // text.num_attention_heads
    grid = cfg.image_size // cfg.vision["patch_size"]
    image_tokens = grid * grid // (cfg.scale_factor**2 if cfg.family != "paligemma" else 1)
    layout_extra = 3 if cfg.family != "paligemma" else 0  # <fake><global-img> ... <fake> per image
    seq = len(cfg.cameras or ["a", "b"]) * (image_tokens + layout_extra) + cfg.max_text_tokens \
        + (cfg.state_dim or 8) + cfg.chunk_size * (cfg.action_dim or 8)
    kv = 2 * text.num_hidden_layers * text.num_key_value_heads * head_dim * seq * dtype_bytes
    return {"parameters_m": round(params / 1e6, 2), "weights_mib": round(params * dtype_bytes / 2**20, 1),
            "kv_cache_mib": round(kv / 2**20, 2), "sequence_length": seq}


def _frames(model: VLAModel, seed: int = 0) -> list[np.ndarray]:
    rng = np.random.default_rng(seed)
    S = model.vision_size
    return [rng.integers(0, 255, (S, S, 3)).astype(np.uint8) for _ in model.config.cameras]


def _timed(fn, repeats: int, device: torch.device) -> list[float]:
    return time_calls(fn, repeats, warmup=3, device=device)  # 3: compilation and CUDA-graph capture


def _bench_model(model: VLAModel, device: torch.device, repeats: int, compile_ok: bool, ar_repeats: int | None = None,
                 on_row=None) -> dict[str, Any]:
    """Latency rows for one model; `on_row(rows)` is called after each, so a run cut short keeps them."""
    on_row = on_row or (lambda rows: None)
    frames, state, task = _frames(model), np.zeros(model.config.state_dim, np.float32), "pick up the red cube"
    obs = {f"observation.images.{c}": f for c, f in zip(model.config.cameras, frames, strict=True)}
    obs.update({"observation.state": state, "task": task})
    rows: dict[str, Any] = {}
    variants = [("eager_fp32", "fp32", False), ("eager_bf16", "bf16", False)]
    if compile_ok:
        variants.append(("compiled_bf16", "bf16", True))
    for name, dtype, compiled in variants:
        fast = FastVLA(copy.deepcopy(model), device, dtype=dtype, compile=compiled)  # the model stays fp32
        for decoding in model.config.decoding_modes:
            try:
                # per step: the way in (check, pinned uint8 upload) and the decode, as a policy runs it
                n = repeats if decoding == "parallel" else (ar_repeats or repeats)
                times = _timed(lambda d=decoding, f=fast: f.predict(f.inputs(obs), d), n, device)
                rows[f"{name}/{decoding}"] = latency_summary(times)
            except Exception as exc:  # noqa: BLE001 - a variant that cannot run is reported, the others go on
                rows[f"{name}/{decoding}"] = {"error": f"{type(exc).__name__}: {exc}"[:300]}
            on_row(rows)
        if device.type == "cuda":
            rows[f"{name}/peak_allocated_mib"] = round(torch.cuda.max_memory_allocated() / 2**20, 1)
            torch.cuda.reset_peak_memory_stats()
    # Dense vs token reuse at the change rates measured in the sim (`vla bench reuse`).

    def event_rows(reuse: dict[str, Any]) -> None:
        rows.update({f"event/{k}": v for k, v in reuse.items()})
        on_row(rows)

    try:
        time_reuse(model, device, repeats, SIM_RATES, on_row=event_rows)
    except Exception as exc:  # noqa: BLE001 - reported; the next model's rows still run
        rows["event/error"] = f"{type(exc).__name__}: {exc}"[:300]
        on_row(rows)
    return rows


def bench_gpu(policy: str | Path, repeats: int = 50, device: str | None = None, sizes: tuple[str, ...] = SIZES,
              compile_ok: bool = True, ar_repeats: int | None = None, on_update=None) -> dict[str, Any]:
    """The report; `on_update(report)` is called whenever a figure is added (a run cut short keeps
    what it measured). `ar_repeats`: timed steps for autoregressive decoding (default `repeats`)."""
    on_update = on_update or (lambda report: None)
    device_t = torch.device(device or ("cuda" if torch.cuda.is_available() else "cpu"))
    card = torch.cuda.get_device_name(device_t) if device_t.type == "cuda" else f"CPU ({platform.machine()})"
    report: dict[str, Any] = {"device": card, "torch": torch.__version__, "repeats": repeats,
                              "autoregressive_repeats": ar_repeats or repeats,
                              "note": "per step = one chunk inference (batch 1, 2 cameras); "
                                      "achievable_hz = 1000 / median"}
    shipped = VLAModel.from_pretrained(policy, device=device_t)
    report["memory"] = {"shipped": memory(shipped.config, vocab=len(shipped.tokenizer))}
    for size in sizes:
        report["memory"][size] = memory(load_model_config(size, cameras=["scene", "wrist"], state_dim=8,
                                                          action_dim=8))
    on_update(report)
    report["latency"] = {}
    models = [("shipped", lambda: shipped)]
    if "smolvlm-256m" in sizes:
        models.append(("smolvlm-256m", lambda: random_model("smolvlm-256m").to(device_t)))
    for name, build in models:
        def row(rows, name=name):
            report["latency"][name] = rows
            on_update(report)
        _bench_model(build(), device_t, repeats, compile_ok, ar_repeats, row)
    return report
