"""The one training loop every objective runs through (`vla train`, `vla train --objective planner`,
LeRobot's ACT and Diffusion Policy in `vla bench peers`).

An objective hands the loop its model, a step function (sample a batch, return the loss and
metrics) and a way to save a loadable folder; the loop owns everything else, so every objective
resumes, schedules, clips, checkpoints, logs and keeps a time budget alike:

- the objective's optimizer and LR schedule, by default AdamW with decay on weight matrices only
  and warm-up + cosine (vla.train.optim); the peers bring LeRobot's presets (vla.peers.train);
- a time budget (`TrainConfig.time_budget_s`), probed here for every objective: the steps that
  fit are counted after the first ones, and the schedule is rebuilt to end where the budget ends;
- `accelerate`: device placement, several GPUs under
  `accelerate launch --multi_gpu --num_processes N -m vla.cli train ...`; fp32 with TF32 matmuls
  on CUDA by default (bf16 autocast breaks inside transformers' SmolVLM: its merge writes bf16
  image features into fp32 text embeddings; seen on an H100), `mixed_precision="bf16"` to ask;
- checkpoints in OUT/checkpoints/step_<N>/: the objective's folder plus training_state.pt
  (optimizer, schedule and its total, step and every process's random streams), so a resumed run
  repeats the uninterrupted one exactly (on one process; see `restore`);
- metrics in OUT/metrics.csv (and TensorBoard when installed); at the end the newest checkpoint,
  minus the optimizer state, is copied to OUT and OUT/train_info.json summarises the run.
"""

from __future__ import annotations

import csv
import json
import math
import platform
import random
import shutil
import time
from collections.abc import Callable
from dataclasses import asdict, dataclass, replace
from pathlib import Path
from typing import Any

import torch
from torch import nn
from torch.optim import Optimizer
from torch.optim.lr_scheduler import LRScheduler

from vla.train.optim import OptimizerFn, ScheduleFn, adamw, load_optimizer_state, warmup_cosine_schedule

STATE_FILE = "training_state.pt"
CHECKPOINTS = "checkpoints"
BUDGET_WARMUP, BUDGET_PROBE = 10, 40  # a time-budgeted run times steps 10-50, then fixes its total
clock = time.perf_counter  # the loop's clock for budgets and wall time (tests run it on simulated time)

# (model, generator, rng) -> (loss, metrics): samples its own batch from the two random streams.
StepFn = Callable[[nn.Module, torch.Generator, random.Random], tuple[torch.Tensor, dict[str, float]]]


@dataclass
class TrainConfig:
    """One training recipe. The first block is the loop's; the rest only the action objective reads."""

    steps: int = 5000
    batch_size: int = 32
    lr: float = 5e-4
    warmup_steps: int = 300
    weight_decay: float = 0.01  # on weight matrices only (see vla.train.optim.param_groups)
    grad_clip: float = 1.0
    seed: int = 0
    checkpoint_every: int = 1000
    log_every: int = 50
    # Train for this many seconds instead of `steps` steps: after BUDGET_PROBE timed steps the total
    # is fixed at as many as fit (the schedule ends there) and saved, so a resumed run keeps it.
    time_budget_s: float | None = None
    mixed_precision: str = "no"  # accelerate's ("no" | "bf16"); see the module docstring
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
        if self.mixed_precision not in ("no", "bf16"):
            raise ValueError(f"mixed_precision={self.mixed_precision!r}; expected 'no' or 'bf16'")
        if self.time_budget_s is not None and self.time_budget_s <= 0:
            raise ValueError(f"time_budget_s={self.time_budget_s}; expected a positive number of seconds")


@dataclass
class Objective:
    """What one kind of training gives the loop; the loop does the rest."""

    tag: str  # names the progress bar and the TensorBoard scalars
    model: nn.Module  # trained in place: the parameters `optimizer` is given
    step: StepFn
    save: Callable[[nn.Module, Path], object]  # writes a complete, loadable folder (no optimizer state)
    metrics: list[str]  # the keys `step` returns, in metrics.csv's column order
    info: dict[str, Any]  # what train_info.json says about the data and the model (read when it is written)
    shown: tuple[str, ...] = ("loss",)  # metrics on the progress bar
    optimizer: OptimizerFn = adamw
    # Built for the run's total; a time-budgeted run rebuilds it once its probe has fixed the total.
    schedule: ScheduleFn = warmup_cosine_schedule
    # Told of each checkpoint as it is written (e.g. to score it by rollouts on the spare core) ...
    on_checkpoint: Callable[[Path], object] | None = None
    # ... and asked, given the newest, which checkpoint OUT ships (None: the newest).
    choose: Callable[[Path], Path] | None = None


def latest_checkpoint(out: Path) -> Path | None:
    """The newest OUT/checkpoints/step_<N> folder, or None when there is none."""
    ckpts = sorted((Path(out) / CHECKPOINTS).glob("step_*"), key=lambda p: int(p.name.split("_")[1]))
    return ckpts[-1] if ckpts else None


def resume_point(out: Path, resume: bool) -> Path | None:
    """The checkpoint to resume from (None: a fresh run). Refuses to resume nothing, and to
    start a fresh run over one already in OUT."""
    ckpt = latest_checkpoint(out) if resume else None
    if resume and ckpt is None:
        raise FileNotFoundError(f"--resume: no checkpoint under {out / CHECKPOINTS}; drop --resume to start a run")
    if not resume and (out / CHECKPOINTS).exists():
        raise FileExistsError(f"{out} already holds a training run; pass --resume to continue it, or another --out")
    return ckpt


class Schedule:
    """The LR scheduler over the run's total steps. A time-budgeted run starts from a provisional
    total (cfg.steps) and `fix`es the real one after its probe; checkpoints save the total and
    whether it is fixed, so a resumed run ends where the uninterrupted one would have."""

    def __init__(self, build: ScheduleFn, optimizer: Optimizer, cfg: TrainConfig, total: int, fixed: bool):
        self.build, self.cfg, self.total, self.fixed = build, cfg, total, fixed
        self.scheduler = build(optimizer, cfg, total)

    def fix(self, total: int, step: int) -> None:
        """Rebuild the scheduler for `total` steps and bring it to `step`, the optimizer steps taken:
        from here on it gives the learning rates of a schedule built for `total` from the start."""
        self.total, self.fixed = total, True
        self.scheduler = self.build(self.scheduler.optimizer, self.cfg, total)
        for _ in range(step):  # replayed, not set: right for any step-based scheduler, not only LambdaLR
            self.scheduler.step()

    def state(self) -> dict[str, Any]:
        return {"scheduler": self.scheduler.state_dict(), "total_steps": self.total, "total_fixed": self.fixed}


def planned_steps(cfg: TrainConfig, state: dict[str, Any] | None) -> tuple[int, bool]:
    """(total steps, whether final) of a run starting from a checkpoint's `state` (None: fresh).
    Without a budget, cfg.steps (a run resumed with more --steps ends there); with one, the total
    its probe fixed, or cfg.steps until it has."""
    if cfg.time_budget_s is None:
        return cfg.steps, True
    if state is None:
        return cfg.steps, False
    if "total_steps" in state:
        return int(state["total_steps"]), bool(state["total_fixed"])
    old = state["scheduler"]["lr_lambdas"][0]  # saved before the loop kept the total: the old schedule's own
    return int(old["steps"]), bool(old.get("fixed", True))


def budgeted_steps(done: int, timed_steps: int, timed_s: float, left_s: float, floor: int) -> int:
    """The run's total steps when `left_s` seconds remain after `done` steps, the last
    `timed_steps` of which took `timed_s`: as many as fit, never fewer than `floor`."""
    return max(floor, done + int(left_s / (timed_s / timed_steps)))


@dataclass
class Streams:
    """One process's random streams: the torch generator and the Python RNG that the step
    function samples batches and augmentations from, plus torch's global (and CUDA) state."""

    generator: torch.Generator
    rng: random.Random

    @classmethod
    def seeded(cls, seed: int) -> Streams:
        torch.manual_seed(seed)
        return cls(torch.Generator().manual_seed(seed), random.Random(seed))

    def state(self) -> dict[str, Any]:
        return {"generator": self.generator.get_state(), "random": self.rng.getstate(),
                "torch": torch.get_rng_state(),
                "cuda": torch.cuda.get_rng_state() if torch.cuda.is_available() else None}

    @classmethod
    def restored(cls, state: dict[str, Any]) -> Streams:
        streams = cls(torch.Generator(), random.Random())
        streams.generator.set_state(state["generator"])
        streams.rng.setstate(state["random"])
        torch.set_rng_state(state["torch"])
        if state["cuda"] is not None and torch.cuda.is_available():
            torch.cuda.set_rng_state(state["cuda"])
        return streams


def restore(state: dict[str, Any] | None, optimizer: Optimizer, scheduler: LRScheduler, model: nn.Module, seed: int,
            rank: int, processes: int) -> tuple[int, Streams]:
    """(step to start from, random streams) for a fresh run or one resumed from a checkpoint's `state`.

    The scheduler, built for the run's total, takes its position from the checkpoint after the
    optimizer's state (building it set the learning rate of step 0). Each process gets its own
    streams. A checkpoint holds every process's, so resuming with the same number of processes
    continues them exactly; one from an older version or another process count reseeds them
    from the step instead (as earlier versions did)."""
    if state is None:
        return 0, Streams.seeded(seed * 1000 + rank)
    load_optimizer_state(optimizer, state["optimizer"], model)
    scheduler.load_state_dict(state["scheduler"])
    step = int(state["step"])
    saved = state.get("rng") or []
    if len(saved) == processes:
        return step, Streams.restored(saved[rank])
    return step, Streams.seeded(seed * 1000 + step + rank)


def save_checkpoint(objective: Objective, optimizer: Optimizer, schedule: Schedule, step: int, out: Path,
                    rng: list[dict[str, Any]]) -> Path:
    """OUT/checkpoints/step_<N>/: the objective's folder plus training_state.pt, written
    aside and renamed, so a checkpoint appears whole or not at all."""
    path = out / CHECKPOINTS / f"step_{step:07d}"
    tmp = path.with_name(path.name + ".tmp")
    shutil.rmtree(tmp, ignore_errors=True)
    objective.save(objective.model, tmp)
    torch.save({"optimizer": optimizer.state_dict(), **schedule.state(), "step": step, "rng": rng}, tmp / STATE_FILE)
    if path.exists():
        shutil.rmtree(path)
    tmp.rename(path)
    return path


class _Stepper(nn.Module):
    """The objective's model with its step function as forward: the loss is then made inside
    the (DDP-wrapped) forward, which is where DDP expects it, whatever methods the step calls."""

    def __init__(self, model: nn.Module, step: StepFn):
        super().__init__()
        self.model, self.step_fn = model, step

    def forward(self, generator: torch.Generator, rng: random.Random) -> tuple[torch.Tensor, dict[str, float]]:
        return self.step_fn(self.model, generator, rng)


def train_loop(objective: Objective, cfg: TrainConfig, out: Path, resume_from: Path | None = None,
               progress: bool = True) -> dict[str, Any]:
    """Train `objective.model` to `cfg.steps` (from `resume_from`'s state when given; its weights
    the objective has already loaded). Returns the summary written to OUT/train_info.json, or
    {} on processes other than the main one."""
    from accelerate import Accelerator

    if torch.cuda.is_available():
        torch.backends.cuda.matmul.allow_tf32 = True  # fp32 weights and accumulation, TF32 tensor cores
    accelerator = Accelerator(mixed_precision=cfg.mixed_precision if torch.cuda.is_available() else "no")
    # tensors and numbers only: no code runs
    state = torch.load(resume_from / STATE_FILE, weights_only=True) if resume_from is not None else None
    optimizer = objective.optimizer(objective.model, cfg)
    schedule = Schedule(objective.schedule, optimizer, cfg, *planned_steps(cfg, state))
    start_step, streams = restore(state, optimizer, schedule.scheduler, objective.model, cfg.seed,
                                  accelerator.process_index, accelerator.num_processes)
    # The scheduler stays out of prepare(): accelerate would step it once per process at every
    # optimizer step, running the schedule N times too fast on N GPUs.
    stepper, optimizer = accelerator.prepare(_Stepper(objective.model, objective.step), optimizer)
    out.mkdir(parents=True, exist_ok=True)
    log = MetricsLog(out, ["step", *objective.metrics, "lr", "samples_per_s", "elapsed_s"], resumed=start_step > 0,
                     batch_size=cfg.batch_size, tag=objective.tag, enabled=accelerator.is_main_process)
    started = clock()
    try:
        steps = _steps(objective, cfg, out, accelerator, stepper, optimizer, schedule, streams, start_step, log,
                       progress, started)
    finally:
        log.close()
    accelerator.wait_for_everyone()
    if not accelerator.is_main_process:
        return {}
    return _finish(objective, replace(cfg, steps=steps), out, start_step, clock() - started)


def _steps(objective: Objective, cfg: TrainConfig, out: Path, accelerator, stepper: nn.Module, optimizer,
           schedule: Schedule, streams: Streams, start_step: int, log: MetricsLog, progress: bool,
           started: float) -> int:
    """Run the steps; returns the total (cfg.steps, or what a time budget fixed)."""
    from accelerate.utils import broadcast_object_list, gather_object
    from tqdm import tqdm

    fixed, steps = schedule.fixed, schedule.total  # a resumed budgeted run restored its fixed total
    probe_from = probe_start = None

    params = [p for group in optimizer.param_groups for p in group["params"]]
    stepper.train()
    bar = tqdm(initial=start_step, total=steps, desc=objective.tag,
               disable=not (progress and accelerator.is_main_process))
    step = start_step
    while step < steps:
        if not fixed and step - start_step == BUDGET_WARMUP:  # first steps: compilation, caches
            probe_from, probe_start = step, clock()
        if not fixed and probe_from is not None and step - probe_from == BUDGET_PROBE:
            if accelerator.device.type == "cuda":
                torch.cuda.synchronize()
            now = clock()
            left = cfg.time_budget_s - (now - started) - 0.02 * cfg.time_budget_s  # saves, stragglers
            total = budgeted_steps(step, BUDGET_PROBE, now - probe_start, left, step + 1)
            # every process must stop at the same step: take the main process's count
            steps = int(broadcast_object_list([total])[0])
            schedule.fix(steps, step)  # the steps so far followed the provisional total's schedule
            fixed, bar.total = True, steps
        with accelerator.autocast():
            loss, metrics = stepper(streams.generator, streams.rng)
        optimizer.zero_grad(set_to_none=True)
        accelerator.backward(loss)
        accelerator.clip_grad_norm_(params, cfg.grad_clip)
        optimizer.step()
        schedule.scheduler.step()
        log.add(metrics)
        done = step = step + 1
        bar.update()
        if done % cfg.log_every == 0 or done == steps:
            row = log.write(done, schedule.scheduler.get_last_lr()[0])
            bar.set_postfix({k: f"{row[k]:.3f}" for k in objective.shown})
        if done % cfg.checkpoint_every == 0 or done == steps:
            rng = gather_object([streams.state()])  # every process's streams, in rank order
            if accelerator.is_main_process:
                saved = save_checkpoint(objective, optimizer, schedule, done, out, rng)
                if objective.on_checkpoint is not None:
                    objective.on_checkpoint(saved)
    bar.close()
    return steps


def _finish(objective: Objective, cfg: TrainConfig, out: Path, start_step: int, wall_time_s: float) -> dict[str, Any]:
    """Copy the chosen checkpoint (the newest unless the objective chooses), minus optimizer state, to OUT
    (the policy) and write train_info.json."""
    final = latest_checkpoint(out)
    if final is None:
        raise FileNotFoundError(f"no checkpoint under {out / CHECKPOINTS} after training to step {cfg.steps}")
    if objective.choose is not None:
        final = objective.choose(final)
    for item in final.iterdir():
        if item.name != STATE_FILE:
            shutil.copy2(item, out / item.name)
    summary = {**objective.info, "steps": cfg.steps, "resumed_from_step": start_step,
               "wall_time_s": round(wall_time_s, 1), "train_config": asdict(cfg),
               "parameters": sum(p.numel() for p in objective.model.parameters()), "machine": machine(),
               "shipped_checkpoint": final.name}
    (out / "train_info.json").write_text(json.dumps(summary, indent=2))
    return summary


def machine() -> str:
    """The machine a run trained on, for train_info.json and docs (figures name their machine)."""
    gpu = torch.cuda.get_device_name() if torch.cuda.is_available() else "CPU only"
    return f"{platform.machine()}, {torch.get_num_threads()} threads, {gpu}"


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
