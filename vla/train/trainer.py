"""`vla train`: fine-tune a VLA on a LeRobot dataset.

AdamW with linear warm-up and cosine decay, gradient clipping, image augmentation, seeded.
Runs through `accelerate`, so `accelerate launch -m vla.cli train ...` trains on several GPUs
and bf16 autocast is on whenever CUDA is. Periodic checkpoints in OUT/checkpoints/<step>/ are
complete policies plus the optimizer state; `--resume` continues from the newest one. The
final policy is written to OUT itself, so `vla eval --policy OUT` works.
"""

from __future__ import annotations

import csv
import json
import math
import platform
import shutil
import time
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any

import torch

from vla.data import open_dataset
from vla.data.dataset import DemoDataset
from vla.model.config import VLAConfig, load_model_config
from vla.model.vla import Batch, VLAModel, new_model, trains_decoding
from vla.train.data import DemoCache, augment
from vla.types import ACTION, OBS_STATE

STATE_FILE = "training_state.pt"


@dataclass
class TrainConfig:
    steps: int = 5000
    batch_size: int = 32
    lr: float = 5e-4
    warmup_steps: int = 300
    weight_decay: float = 0.01
    grad_clip: float = 1.0
    seed: int = 0
    checkpoint_every: int = 1000
    log_every: int = 50
    lora: bool = False
    lora_rank: int = 16
    instruction_key: str = "task"
    augment: bool = True
    parallel_fraction: float = 0.5  # samples that train parallel decoding; the rest train autoregressive
    label_sigma: float = 0.0  # > 0: Gaussian soft targets this many bins wide instead of one-hot

    def __post_init__(self) -> None:
        if not 0.0 <= self.parallel_fraction <= 1.0:
            raise ValueError(f"parallel_fraction={self.parallel_fraction}; expected 0..1 (0.5 trains both modes)")
        if self.label_sigma < 0:
            raise ValueError(f"label_sigma={self.label_sigma}; expected >= 0 bins (0: one-hot targets)")


def model_config_for(dataset: DemoDataset, model: str, **overrides: Any) -> VLAConfig:
    """The model config with the dataset's cameras, dimensions and rate filled in."""
    names = dataset.features[ACTION].get("names") or [f"a{i}" for i in range(dataset.action_dim)]
    if isinstance(names, dict):  # LeRobot sometimes nests names by axis
        names = next(iter(names.values()))
    return load_model_config(model, cameras=dataset.cameras, state_dim=dataset.state_dim,
                             action_dim=dataset.action_dim, fps=float(dataset.fps), joint_names=list(names),
                             **overrides)


def vision_image_size(config: VLAConfig) -> int:
    """The square image size the vision tower takes: the tiny config's, or the checkpoint's."""
    if config.backbone_path:
        saved = json.loads((Path(config.backbone_path) / "config.json").read_text())
        return int(saved["vision_config"]["image_size"])
    return config.image_size


def build_model(dataset: DemoDataset, cache: DemoCache, config: VLAConfig) -> VLAModel:
    stats = dataset.stats
    state_low, state_high = stats[OBS_STATE]["q01"], stats[OBS_STATE]["q99"]
    if config.action_reference == "state":
        action_low, action_high = cache.relative_quantiles()
    else:
        action_low, action_high = stats[ACTION]["q01"], stats[ACTION]["q99"]
    texts = cache.texts + list(dataset.tasks)
    return new_model(config, texts, action_low, action_high, state_low, state_high)


def _lr_lambda(cfg: TrainConfig):
    def f(step: int) -> float:
        if step < cfg.warmup_steps:
            return (step + 1) / cfg.warmup_steps
        progress = (step - cfg.warmup_steps) / max(1, cfg.steps - cfg.warmup_steps)
        return 0.05 + 0.95 * 0.5 * (1 + math.cos(math.pi * min(1.0, progress)))
    return f


def _apply_lora(model: VLAModel, rank: int) -> None:
    from peft import LoraConfig, get_peft_model

    lora = LoraConfig(r=rank, lora_alpha=2 * rank, lora_dropout=0.0,
                      target_modules=["q_proj", "k_proj", "v_proj", "o_proj"],
                      modules_to_save=["lm_head", "embed_tokens", "connector", "multi_modal_projector"])
    model.backbone = get_peft_model(model.backbone, lora)


def _merge_lora(model: VLAModel) -> None:
    if hasattr(model.backbone, "merge_and_unload"):
        model.backbone = model.backbone.merge_and_unload()


def latest_checkpoint(out: Path) -> Path | None:
    ckpts = sorted((out / "checkpoints").glob("step_*"), key=lambda p: int(p.name.split("_")[1]))
    return ckpts[-1] if ckpts else None


def train(dataset: str | Path, out: str | Path, model: str = "tiny", cfg: TrainConfig | None = None,
          resume: bool = False, progress: bool = True, model_overrides: dict | None = None) -> dict[str, Any]:
    """Train and save a policy to `out`; returns a summary (also written to OUT/train_info.json)."""
    from accelerate import Accelerator
    from tqdm import tqdm

    cfg = cfg or TrainConfig()
    out = Path(out)
    accelerator = Accelerator(mixed_precision="bf16" if torch.cuda.is_available() else "no")
    torch.manual_seed(cfg.seed + accelerator.process_index)
    demo = open_dataset(dataset)
    start_step, ckpt = 0, latest_checkpoint(out) if resume else None
    if resume and ckpt is None:
        raise FileNotFoundError(f"--resume: no checkpoint under {out / 'checkpoints'}")
    if not resume and (out / "checkpoints").exists():
        raise FileExistsError(f"{out} already holds a training run; pass --resume to continue it, or another --out")
    if ckpt is not None:
        policy_cfg = VLAModel.from_pretrained(ckpt).config
    else:
        policy_cfg = model_config_for(demo, model, **(model_overrides or {}))
    if not trains_decoding(cfg.parallel_fraction, policy_cfg.decoding):
        raise ValueError(f"parallel_fraction={cfg.parallel_fraction} leaves the policy's decoding mode "
                         f"({policy_cfg.decoding!r}) untrained; pick a fraction that trains it")
    cache = DemoCache.from_dataset(demo, policy_cfg.chunk_size, vision_image_size(policy_cfg),
                                   cfg.instruction_key, progress=progress)
    vla = VLAModel.from_pretrained(ckpt) if ckpt is not None else build_model(demo, cache, policy_cfg)
    if cfg.lora:
        _apply_lora(vla, cfg.lora_rank)
    params = [p for p in vla.parameters() if p.requires_grad]
    optimizer = torch.optim.AdamW(params, lr=cfg.lr, weight_decay=cfg.weight_decay, betas=(0.9, 0.95))
    scheduler = torch.optim.lr_scheduler.LambdaLR(optimizer, _lr_lambda(cfg))
    if ckpt is not None:
        state = torch.load(ckpt / STATE_FILE, weights_only=True)  # tensors and numbers only: no code runs
        optimizer.load_state_dict(state["optimizer"])
        scheduler.load_state_dict(state["scheduler"])
        start_step = int(state["step"])
    vla, optimizer, scheduler = accelerator.prepare(vla, optimizer, scheduler)
    core: VLAModel = accelerator.unwrap_model(vla)
    generator = torch.Generator().manual_seed(cfg.seed * 1000 + start_step + accelerator.process_index)
    out.mkdir(parents=True, exist_ok=True)
    log = MetricsLog(out, ["step", "loss", "acc_parallel", "acc_autoregressive", "lr", "samples_per_s", "elapsed_s"],
                     resumed=start_step > 0, batch_size=cfg.batch_size, tag="train",
                     enabled=accelerator.is_main_process)
    vla.train()
    started = time.perf_counter()
    bar = tqdm(range(start_step, cfg.steps), initial=start_step, total=cfg.steps, desc="train",
               disable=not (progress and accelerator.is_main_process))
    for step in bar:
        index = torch.randint(0, len(cache), (cfg.batch_size,), generator=generator)
        images = cache.images[index].float().div_(255)
        if cfg.augment:
            images = augment(images, generator)
        batch = Batch(images.to(accelerator.device), [cache.texts[i] for i in cache.text_index[index]],
                      cache.state[index].to(accelerator.device), cache.chunk(index).to(accelerator.device))
        with accelerator.autocast():
            loss, metrics = vla(batch, cfg.parallel_fraction, cfg.label_sigma)
        optimizer.zero_grad(set_to_none=True)
        accelerator.backward(loss)
        accelerator.clip_grad_norm_(params, cfg.grad_clip)
        optimizer.step()
        scheduler.step()
        log.add(metrics)
        done = step + 1
        if done % cfg.log_every == 0 or done == cfg.steps:
            row = log.write(done, scheduler.get_last_lr()[0])
            bar.set_postfix(loss=f"{row['loss']:.3f}", acc=f"{row['acc_parallel']:.2f}")
        if accelerator.is_main_process and (done % cfg.checkpoint_every == 0 or done == cfg.steps):
            _checkpoint(core, optimizer, scheduler, done, out, cfg)
    log.close()
    accelerator.wait_for_everyone()
    summary: dict[str, Any] = {}
    if accelerator.is_main_process:
        final = latest_checkpoint(out)
        for item in final.iterdir():  # the newest checkpoint, minus optimizer state, is the policy
            if item.name != STATE_FILE:
                shutil.copy2(item, out / item.name)
        summary = {
            "dataset": str(dataset), "model": model, "steps": cfg.steps, "resumed_from_step": start_step,
            "wall_time_s": round(time.perf_counter() - started, 1), "train_config": asdict(cfg),
            "policy_config": core.config.to_dict(), "frames": len(cache), "episodes": demo.num_episodes,
            "parameters": sum(p.numel() for p in core.parameters()),
            "machine": f"{platform.machine()}, {torch.get_num_threads()} threads, "
                       f"{torch.cuda.get_device_name() if torch.cuda.is_available() else 'CPU only'}",
        }
        (out / "train_info.json").write_text(json.dumps(summary, indent=2))
    return summary


def _checkpoint(model: VLAModel, optimizer, scheduler, step: int, out: Path, cfg: TrainConfig) -> Path:
    path = out / "checkpoints" / f"step_{step:07d}"
    tmp = path.with_name(path.name + ".tmp")
    shutil.rmtree(tmp, ignore_errors=True)
    if cfg.lora:  # save a merged copy: checkpoints stay plain models that load without peft
        import copy

        merged = copy.deepcopy(model)
        _merge_lora(merged)
        merged.save_pretrained(tmp)
    else:
        model.save_pretrained(tmp)
    torch.save({"optimizer": optimizer.state_dict(), "scheduler": scheduler.state_dict(), "step": step},
               tmp / STATE_FILE)
    if path.exists():
        shutil.rmtree(path)
    tmp.rename(path)  # a checkpoint appears whole or not at all
    return path


class MetricsLog:
    """Per-step metrics averaged over `log_every` steps into OUT/metrics.csv (appended to on
    resume) and TensorBoard when installed. `enabled=False` (non-main processes) writes nothing."""

    def __init__(self, out: Path, fields: list[str], resumed: bool, batch_size: int, tag: str, enabled: bool = True):
        self.fields, self.batch_size, self.tag, self.enabled = fields, batch_size, tag, enabled
        self.window: list[dict[str, float]] = []
        self.started = self.window_start = time.perf_counter()
        self.file = self.writer = self.tb = None
        if enabled:
            path = out / "metrics.csv"
            new_file = not resumed or not path.exists()
            self.file = path.open("w" if new_file else "a", newline="")
            self.writer = csv.DictWriter(self.file, fieldnames=fields)
            if new_file:
                self.writer.writeheader()
            self.tb = _tensorboard(out / "tensorboard")

    def add(self, metrics: dict[str, float]) -> None:
        self.window.append(metrics)

    def write(self, step: int, lr: float) -> dict[str, float]:
        """Average the window into one row, write it, start a new window; returns the row."""
        now = time.perf_counter()
        row = {k: _mean([m[k] for m in self.window]) for k in self.window[0]}
        row.update(step=step, lr=lr, samples_per_s=len(self.window) * self.batch_size / (now - self.window_start),
                   elapsed_s=now - self.started)
        if self.enabled:
            self.writer.writerow({k: round(v, 6) if isinstance(v, float) else v for k, v in row.items()})
            self.file.flush()
            if self.tb is not None:
                for k, v in row.items():
                    self.tb.add_scalar(f"{self.tag}/{k}", v, step)
        self.window, self.window_start = [], time.perf_counter()
        return row

    def close(self) -> None:
        if self.file is not None:
            self.file.close()
        if self.tb is not None:
            self.tb.close()


def _mean(values: list[float]) -> float:
    """The mean of the finite values; NaN when there are none (a metric not measured in this window)."""
    finite = [v for v in values if not math.isnan(v)]
    return sum(finite) / len(finite) if finite else float("nan")


def _tensorboard(path: Path):
    try:
        from torch.utils.tensorboard import SummaryWriter
    except ImportError:  # tensorboard is optional
        return None
    return SummaryWriter(str(path))
