"""Train LeRobot's ACT or Diffusion Policy on a LeRobot dataset, with LeRobot's own classes.

The policy, its processors (normalization from the dataset's statistics), its optimizer and
scheduler presets and its loss are LeRobot's. What is ours is only the sample feed: frames are
decoded once into memory (`vla.train.data.DemoCache`, the same feed the VLA trains from) and
batches are cut from it, because on a CPU-only machine decoding video per sample would cost
more than the model's step. Sizes are set for a 2-core CPU (see `peer_config`).
"""

from __future__ import annotations

import json
import time
from pathlib import Path
from typing import Any

import torch

from vla.data import open_dataset
from vla.types import ACTION, OBS_IMAGES_PREFIX, OBS_STATE, PRIVILEGED, TASK

PEERS = ("act", "diffusion")


def peer_config(kind: str, device: str = "cpu", image_size: int = 128, chunk_size: int | None = None,
                n_action_steps: int | None = None):
    """LeRobot configs sized for this machine. Vision backbones start from random weights (none
    can be downloaded; our VLA starts from random weights too). ACT's chunking defaults to our
    tiny VLA's (`configs/models/tiny.yaml`), so both plan and execute over the same horizon."""
    if kind == "act":
        from lerobot.policies.act.configuration_act import ACTConfig

        from vla.model.config import load_model_config

        ours = load_model_config("tiny")
        chunk_size = chunk_size or ours.chunk_size
        n_action_steps = n_action_steps or min(ours.n_action_steps, chunk_size)
        # LeRobot's ACT recipe with a smaller transformer (dim 256 instead of 512, feed-forward
        # 1024 instead of 3200) and our chunking (K actions per chunk, as many executed as ours).
        return ACTConfig(device=device, chunk_size=chunk_size, n_action_steps=n_action_steps, dim_model=256,
                         dim_feedforward=1024, n_encoder_layers=4, n_decoder_layers=1, n_vae_encoder_layers=2,
                         pretrained_backbone_weights=None, push_to_hub=False)
    if kind == "diffusion":
        from lerobot.policies.diffusion.configuration_diffusion import DiffusionConfig

        # LeRobot's Diffusion Policy recipe with a 4x narrower U-Net (down_dims 128-256-512), one
        # observation step (our VLA sees one), horizon 16 with 8 executed, DDIM with 10 inference
        # steps instead of 100 DDPM steps, group norm (required without pretrained weights) and a
        # random crop 8 px smaller than the frames (120 of 128) as its augmentation.
        return DiffusionConfig(device=device, n_obs_steps=1, horizon=16, n_action_steps=8, drop_n_last_frames=0,
                               down_dims=(128, 256, 512), noise_scheduler_type="DDIM", num_inference_steps=10,
                               crop_shape=(image_size - 8, image_size - 8), use_group_norm=True,
                               pretrained_backbone_weights=None, push_to_hub=False)
    raise ValueError(f"unknown peer policy {kind!r}; expected one of {PEERS}")


def peer_inputs(demo) -> dict:
    """What a peer sees: the dataset's cameras and joint state, as our VLA. LeRobot would otherwise
    also feed it the simulator's privileged `observation.environment_state` (object positions) and
    `observation.named_objects`."""
    from lerobot.configs import FeatureType
    from lerobot.utils.feature_utils import dataset_to_policy_features

    features = dataset_to_policy_features(demo.lerobot.meta.features)
    return {k: ft for k, ft in features.items() if ft.type is not FeatureType.ACTION and k not in PRIVILEGED}


def cfg_size(demo) -> int:
    """The square frame size the feed decodes to: the first camera's height."""
    return int(demo.image_shape(demo.cameras[0])[0])


def _horizon(cfg) -> int:
    return int(getattr(cfg, "chunk_size", None) or cfg.horizon)


clock = time.perf_counter  # the training clock (a test may set a simulated one)
# A time-budgeted run times steps BUDGET_WARMUP .. BUDGET_WARMUP + BUDGET_PROBE, then fixes its total.
BUDGET_WARMUP, BUDGET_PROBE = 5, 20


def train_peer(kind: str, dataset: str | Path, out: str | Path, steps: int, batch_size: int = 32, seed: int = 0,
               cache=None, progress: bool = True, device: str | None = None,
               time_budget_s: float | None = None) -> dict[str, Any]:
    """Train one LeRobot policy; the checkpoint folder is what `LeRobotPolicy.from_pretrained` loads.

    `time_budget_s`: train this long instead of `steps` (as `vla train --time-budget`): the steps that
    fit are counted after the first ones, and LeRobot's scheduler (Diffusion Policy's cosine) is built
    for that total and brought to the step reached."""
    from lerobot.policies.factory import make_policy, make_pre_post_processors
    from tqdm import tqdm

    from vla.train.data import DemoCache
    from vla.train.loop import budgeted_steps

    device = device or ("cuda" if torch.cuda.is_available() else "cpu")
    out = Path(out)
    demo = open_dataset(dataset)
    cfg = peer_config(kind, device, image_size=demo.image_shape(demo.cameras[0])[0] if demo.cameras else 128)
    cfg.input_features = peer_inputs(demo)
    torch.manual_seed(seed)
    policy = make_policy(cfg, ds_meta=demo.lerobot.meta)  # raises if the dataset lacks what it needs
    pre, post = make_pre_post_processors(cfg, dataset_stats=demo.lerobot.meta.stats)
    K = _horizon(cfg)
    if cache is None or cache.chunk_index.shape[1] < K:
        cache = DemoCache.from_dataset(demo, K, cfg_size(demo), progress=progress)
    optim = cfg.get_optimizer_preset()
    optimizer = optim.build(policy.get_optim_params())
    sched = cfg.get_scheduler_preset()
    if time_budget_s is not None:
        if time_budget_s <= 0:
            raise ValueError(f"time_budget_s={time_budget_s}; expected a positive number of seconds")
        steps = BUDGET_WARMUP + BUDGET_PROBE + 1  # until the probe has timed its steps
    scheduler = sched.build(optimizer, steps) if sched is not None else None
    generator = torch.Generator().manual_seed(seed)
    n_obs = int(getattr(cfg, "n_obs_steps", 1)) if kind == "diffusion" else 0
    policy.train()
    started = clock()
    losses = []
    bar = tqdm(total=steps, desc=f"train {kind}", disable=not progress)
    step, counting = 0, time_budget_s is not None
    while step < steps:
        if counting and step == BUDGET_WARMUP:
            probe_start = clock()
        if counting and step == BUDGET_WARMUP + BUDGET_PROBE:
            now = clock()
            left = time_budget_s - (now - started) - 0.02 * time_budget_s  # the save, stragglers
            steps = budgeted_steps(step, BUDGET_PROBE, now - probe_start, left, step + 1)
            counting, bar.total = False, steps
            if sched is not None:  # LeRobot's schedule over the true total, at the step reached
                scheduler = sched.build(optimizer, steps)
                for _ in range(step):
                    scheduler.step()
        index = torch.randint(0, len(cache), (batch_size,), generator=generator)
        images = cache.images[index].float().div_(255)
        batch: dict[str, Any] = {OBS_STATE: cache.state[index]}
        for c, cam in enumerate(cache.cameras):
            batch[OBS_IMAGES_PREFIX + cam] = images[:, c]
        if n_obs:  # Diffusion Policy takes (B, n_obs_steps, ...) observations
            batch = {k: v[:, None].expand(-1, n_obs, *v.shape[1:]) for k, v in batch.items()}
        batch[ACTION] = cache.chunk(index)[:, :K]
        # The feed repeats an episode's last action past its end; LeRobot's own loader marks those
        # steps as padding: ACT leaves them out of its loss and its VAE encoder's attention (Diffusion
        # Policy only with `do_mask_loss_for_padding`, off in LeRobot's recipe and ours).
        batch["action_is_pad"] = cache.pad_mask(index)[:, :K]
        batch[TASK] = [cache.texts[i] for i in cache.text_index[index]]
        batch = pre(batch)
        loss, _ = policy.forward(batch)
        optimizer.zero_grad(set_to_none=True)
        loss.backward()
        torch.nn.utils.clip_grad_norm_(policy.parameters(), optim.grad_clip_norm)
        optimizer.step()
        if scheduler is not None:
            scheduler.step()
        losses.append(loss.item())
        step += 1
        bar.update()
    bar.close()
    wall = clock() - started
    out.mkdir(parents=True, exist_ok=True)
    policy.save_pretrained(out)
    pre.save_pretrained(out)
    post.save_pretrained(out)
    summary = {"type": kind, "dataset": str(dataset), "steps": step, "batch_size": batch_size, "seed": seed,
               "time_budget_s": time_budget_s,
               "wall_time_s": round(wall, 1), "parameters": sum(p.numel() for p in policy.parameters()),
               "final_loss": round(float(sum(losses[-50:]) / max(1, len(losses[-50:]))), 5),
               "fps": float(demo.fps), "frames": len(cache)}
    (out / "train_info.json").write_text(json.dumps(summary, indent=2))
    return summary
