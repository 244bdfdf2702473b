"""`vla train`: fine-tune a VLA on a LeRobot dataset.

The action objective: sample frames from the cached demonstrations, augment the images, and
take the cross-entropy on the action chunk's tokens (parallel and/or autoregressive decoding).
Everything else (AdamW, warm-up + cosine, clipping, accelerate and several GPUs, checkpoints
in OUT/checkpoints/<step>/ and `--resume`, metrics, train_info.json) is the shared loop's, in
vla.train.loop. The final policy is written to OUT itself, so `vla eval --policy OUT` works.
"""

from __future__ import annotations

import copy
import json
import random
import sys
from functools import partial
from pathlib import Path
from typing import Any

import numpy as np
import torch

from vla.data import open_dataset
from vla.data.dataset import DatasetError, DemoDataset
from vla.model.config import VLAConfig, load_model_config
from vla.model.vla import Batch, VLAModel, new_model, trains_decoding
from vla.train.data import DemoCache, augment
from vla.train.loop import (
    STATE_FILE,
    MetricsLog,
    Objective,
    StepFn,
    TrainConfig,
    latest_checkpoint,
    resume_point,
    train_loop,
)
from vla.train.rollouts import SimDemos
from vla.train.stream import StreamBuffer
from vla.types import ACTION, OBS_STATE

# Kept importable from here: the CLI, benchmarks and tests know them by this module.
__all__ = ["STATE_FILE", "MetricsLog", "TrainConfig", "build_model", "latest_checkpoint", "model_config_for",
           "train", "vision_image_size"]


def model_config_for(dataset: DemoDataset, model: str, **overrides: Any) -> VLAConfig:
    """The model config with the dataset's cameras, dimensions and rate filled in."""
    names = dataset.features[ACTION].get("names") or [f"a{i}" for i in range(dataset.action_dim)]
    if isinstance(names, dict):  # LeRobot sometimes nests names by axis
        names = next(iter(names.values()))
    keys = overrides.pop("state_keys", None) or load_model_config(model).state_keys
    aux = overrides.get("aux_targets") or load_model_config(model).aux_targets
    missing = [k for k in aux if k not in dataset.features]
    if missing:  # asked for explicitly: say so rather than train without them
        raise DatasetError(f"aux_targets {missing} are not features of this dataset; it has {sorted(dataset.features)}")
    overrides["aux_dim"] = sum(dataset.feature_dim(k) for k in aux)
    grippers = [i for i, n in enumerate(names) if "finger" in n.lower() or "gripper" in n.lower()]
    overrides.setdefault("gripper_dim", grippers[0] if len(grippers) == 1 else None)
    state_names = dataset.features[OBS_STATE].get("names") or []
    if isinstance(state_names, dict):
        state_names = next(iter(state_names.values()))
    if list(state_names) != list(names):  # e.g. end-effector deltas beside a hand position (Meta-World)
        if overrides.get("action_reference") == "state":
            raise DatasetError(f"action_reference='state' predicts each action relative to the state value of the "
                               f"same name; this dataset's actions {list(names)} are not its state {list(state_names)}")
        if load_model_config(model).action_reference == "state":
            print(f"train: actions {list(names)} are not the state's values {list(state_names)}: "
                  "predicted absolute (action_reference='absolute')", file=sys.stderr)
        overrides["action_reference"] = "absolute"
    return load_model_config(model, cameras=dataset.cameras, state_keys=list(keys),
                             state_dim=sum(dataset.feature_dim(k) for k in keys), action_dim=dataset.action_dim,
                             fps=float(dataset.fps), joint_names=list(names), **overrides)


def vision_image_size(config: VLAConfig) -> int:
    """The square image size the vision tower takes: the tiny config's, or the checkpoint's."""
    if config.backbone_path:
        saved = json.loads((Path(config.backbone_path) / "config.json").read_text())
        return int(saved["vision_config"]["image_size"])
    return config.image_size


def build_model(dataset: DemoDataset, cache: DemoCache, config: VLAConfig) -> VLAModel:
    stats = dataset.stats
    state_low = np.concatenate([stats[k]["q01"] for k in config.state_keys])
    state_high = np.concatenate([stats[k]["q99"] for k in config.state_keys])
    if config.action_reference == "state":
        action_low, action_high = cache.relative_quantiles()
    else:
        action_low, action_high = np.array(stats[ACTION]["q01"]), np.array(stats[ACTION]["q99"])
    if config.gripper == "physical":  # absolute targets and state over the gripper's whole range
        g = config.gripper_dim
        action_low[g], action_high[g] = stats[ACTION]["min"][g], stats[ACTION]["max"][g]
        state_low[g], state_high[g] = stats[OBS_STATE]["min"][g], stats[OBS_STATE]["max"][g]
    texts = cache.texts + list(dataset.tasks)
    model = new_model(config, texts, action_low, action_high, state_low, state_high)
    if model.aux_head is not None:  # standardize the grounding targets with the data's own spread
        mean, std = cache.aux_stats()
        model.aux_head.mean.copy_(mean)
        model.aux_head.std.copy_(std.clamp_min(1e-3))
    return model


def _apply_lora(model: VLAModel, rank: int) -> None:
    from peft import LoraConfig, get_peft_model

    lora = LoraConfig(r=rank, lora_alpha=2 * rank, lora_dropout=0.0,
                      target_modules=["q_proj", "k_proj", "v_proj", "o_proj"],
                      modules_to_save=["lm_head", "embed_tokens", "connector", "multi_modal_projector"])
    model.backbone = get_peft_model(model.backbone, lora)


def _merge_lora(model: VLAModel) -> None:
    if hasattr(model.backbone, "merge_and_unload"):
        model.backbone = model.backbone.merge_and_unload()


def action_step(cache: DemoCache, cfg: TrainConfig) -> StepFn:
    """The action objective's step: `cfg.batch_size` random frames (augmented when
    `cfg.augment`), cross-entropy on their chunks' action tokens."""
    held: dict[torch.device, DemoCache] = {}  # the cache on the model's device, moved once

    def step(model: VLAModel, generator: torch.Generator, rng: random.Random):
        device = model.device
        if device not in held:
            held[device] = cache.on(device)
        data = held[device]
        index = cache.draw(cfg.batch_size, generator)
        at = index.to(data.images.device)
        images = data.images[at].to(device, non_blocking=True).float().div_(255)
        if cfg.augment:
            images = augment(images, generator)
        at = index.to(data.state.device)
        batch = Batch(images, [cache.texts[i] for i in cache.text_index[index]],
                      data.state[at].to(device), data.chunk(at).to(device),
                      None if data.aux is None else data.aux[at].to(device))
        return model(batch, cfg.parallel_fraction, cfg.label_sigma)
    return step


def save_policy(model: VLAModel, path: Path, lora: bool = False) -> None:
    """A complete policy folder; with LoRA a merged copy, so checkpoints load without peft."""
    if lora:
        model = copy.deepcopy(model)
        _merge_lora(model)
    model.save_pretrained(path)


def train(dataset: str | Path | SimDemos, out: str | Path, model: str = "tiny", cfg: TrainConfig | None = None,
          resume: bool = False, progress: bool = True, model_overrides: dict | None = None,
          init: str | Path | None = None, selector=None) -> dict[str, Any]:
    """Train and save a policy to `out`; returns a summary (also written to OUT/train_info.json).

    `dataset` is a LeRobot dataset (a directory or repo id), or expert episodes rolled out in memory
    (`vla.train.rollouts.SimDemos`, or streamed: `vla.train.stream.SimStream`). `selector`: scores each
    checkpoint as it is written and chooses the one OUT ships (`vla.evaluate.select.CheckpointSelector`;
    None: the newest). `init`: a policy to fine-tune (its config, head and action
    statistics are kept; a fresh optimizer and schedule) instead of a new model."""
    cfg = cfg or TrainConfig()
    out = Path(out)
    if init is not None and model_overrides:
        raise ValueError(f"init={init}: a fine-tuned policy keeps its own config; drop {sorted(model_overrides)}")
    ckpt = resume_point(out, resume)
    torch.manual_seed(cfg.seed)  # the same initial weights on every process
    demo = dataset if isinstance(dataset, SimDemos) else open_dataset(dataset)
    start = ckpt if ckpt is not None else init  # a resumed fine-tune continues from its own checkpoint
    if start is not None:
        policy_cfg = VLAModel.from_pretrained(start).config
    else:
        policy_cfg = model_config_for(demo, model, **(model_overrides or {}))
    if init is not None and ckpt is None:  # another robot's demonstrations: said before anything is decoded
        given, wanted = (list(demo.cameras), demo.action_dim), (list(policy_cfg.cameras), policy_cfg.action_dim)
        if given != wanted:
            raise ValueError(f"init={init} was trained on cameras {wanted[0]} and actions of {wanted[1]} values; "
                             f"the demonstrations have cameras {given[0]} and {given[1]}: fine-tune a policy of "
                             "this robot, or train a new one (no --init)")
    if not trains_decoding(cfg.parallel_fraction, policy_cfg.decoding):
        raise ValueError(f"parallel_fraction={cfg.parallel_fraction} leaves the policy's decoding mode "
                         f"({policy_cfg.decoding!r}) untrained; pick a fraction that trains it")
    if isinstance(demo, SimDemos):
        if cfg.instruction_key != "task":
            raise ValueError(f"instruction_key={cfg.instruction_key!r}: episodes rolled out in memory carry "
                             "the task only; record a dataset for subtask training")
        cache = demo.cache(policy_cfg.chunk_size, vision_image_size(policy_cfg), policy_cfg.state_keys,
                           policy_cfg.aux_targets)
    else:
        cache = DemoCache.from_dataset(demo, policy_cfg.chunk_size, vision_image_size(policy_cfg),
                                       cfg.instruction_key, progress=progress, state_keys=policy_cfg.state_keys,
                                       aux_keys=policy_cfg.aux_targets)
    vla = VLAModel.from_pretrained(start) if start is not None else build_model(demo, cache, policy_cfg)
    if cfg.lora:
        _apply_lora(vla, cfg.lora_rank)
    info = {"dataset": demo.source if isinstance(demo, SimDemos) else str(dataset),
            "model": str(init) if init is not None else model,
            "policy_config": vla.config.to_dict(), "frames": len(cache), "episodes": demo.num_episodes}
    if getattr(demo, "dropped", None):
        info["dropped_episodes"] = dict(demo.dropped)  # a takeover round's episodes with nothing to show, by reason
    if isinstance(cache, StreamBuffer):
        info["stream"] = cache.report  # filled in as training streams: read when train_info.json is written
    if selector is not None:
        info["selection"] = selector.report  # filled in as checkpoints are scored
    objective = Objective(
        tag="train", model=vla, step=action_step(cache, cfg), save=partial(save_policy, lora=cfg.lora),
        metrics=["loss", "acc_parallel", "acc_autoregressive", "aux_l1"], shown=("loss", "acc_parallel"), info=info,
        on_checkpoint=None if selector is None else selector.submit,
        choose=None if selector is None else selector.best)
    try:
        return train_loop(objective, cfg, out, ckpt, progress)
    finally:
        if isinstance(cache, StreamBuffer):
            cache.close()
        if selector is not None:
            selector.close()
