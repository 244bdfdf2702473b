"""Train LeRobot's ACT or Diffusion Policy on a LeRobot dataset, with LeRobot's own classes.

The policy, its processors (normalization from the dataset's statistics), its optimizer and
scheduler presets and its loss are LeRobot's. The loop is the one every objective runs through
(vla.train.loop): the same time budget, clipping, checkpoints and `resume`, metrics.csv and
train_info.json as our VLA's. What is ours besides is the sample feed: frames are decoded once
into memory (`vla.train.data.DemoCache`, the same feed the VLA trains from) and batches are cut
from it, because on a CPU-only machine decoding video per sample would cost more than the
model's step. Sizes are set for a 2-core CPU (see `peer_config`).

LeRobot is imported inside the functions: `vla bench peers`, `chunk` and `recipe` import this
module (through vla.bench.peers), and LeRobot's import alone takes seconds.
"""

from __future__ import annotations

from collections import deque
from dataclasses import asdict
from pathlib import Path
from typing import Any

import torch
from safetensors.torch import load_model
from torch.optim import Optimizer
from torch.optim.lr_scheduler import LambdaLR, LRScheduler

from vla.data import open_dataset
from vla.train.data import DemoCache
from vla.train.loop import Objective, TrainConfig, resume_point, train_loop
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


WEIGHTS = "model.safetensors"  # what LeRobot's save_pretrained writes (huggingface_hub's SAFETENSORS_SINGLE_FILE)


def train_peer(kind: str, dataset: str | Path, out: str | Path, steps: int, batch_size: int = 32, seed: int = 0,
               cache: DemoCache | None = None, progress: bool = True, time_budget_s: float | None = None,
               resume: bool = False) -> dict[str, Any]:
    """Train one LeRobot policy through the shared loop; OUT is what `LeRobotPolicy.from_pretrained`
    loads, OUT/checkpoints/ what `resume=True` continues. Returns the summary in OUT/train_info.json.

    `time_budget_s`: train this long instead of `steps` (as `vla train --time-budget`): the loop counts
    the steps that fit, and LeRobot's scheduler (Diffusion Policy's cosine) is rebuilt to end there."""
    out = Path(out)
    ckpt = resume_point(out, resume)
    device = "cuda" if torch.cuda.is_available() else "cpu"  # the loop's device on one process (accelerate's)
    demo = open_dataset(dataset)
    config = peer_config(kind, device, image_size=demo.image_shape(demo.cameras[0])[0] if demo.cameras else 128)
    config.input_features = peer_inputs(demo)
    cfg = _loop_config(config, steps, batch_size, seed, time_budget_s)
    policy, pre, post = _policy(config, demo, seed, ckpt)
    K = _horizon(config)
    if cache is None or cache.chunk_index.shape[1] < K:
        cache = DemoCache.from_dataset(demo, K, cfg_size(demo), progress=progress)
    info = {"type": kind, "dataset": str(dataset), "fps": float(demo.fps), "frames": len(cache)}
    return train_loop(peer_objective(policy, pre, post, cache, batch_size, info), cfg, out, ckpt, progress)


def _loop_config(config, steps: int, batch_size: int, seed: int, time_budget_s: float | None) -> TrainConfig:
    """The loop's config for a peer. Of its optimizer settings the loop reads only the gradient clip
    for a peer (the optimizer and schedule are built from LeRobot's presets, `peer_objective`), so
    the clip is the preset's; lr, weight decay and warm-up are the presets' too, so that
    train_info.json says what ran. One checkpoint per `steps`, as the VLA's recipe in the
    benchmarks: Diffusion Policy's, with its Adam state, is about 0.5 GB."""
    optim, sched = config.get_optimizer_preset(), config.get_scheduler_preset()
    return TrainConfig(steps=steps, batch_size=batch_size, seed=seed, time_budget_s=time_budget_s, lr=optim.lr,
                       weight_decay=optim.weight_decay, grad_clip=optim.grad_clip_norm,
                       warmup_steps=(sched.num_warmup_steps or 0) if sched is not None else 0,
                       checkpoint_every=max(steps, 1))


def _policy(config, demo, seed: int, ckpt: Path | None):
    """(policy, preprocessor, postprocessor) for `config` on `demo`: new weights, or `ckpt`'s."""
    from lerobot.policies.factory import make_policy, make_pre_post_processors

    torch.manual_seed(seed)  # the initial weights; the loop then seeds the training streams
    policy = make_policy(config, ds_meta=demo.lerobot.meta)  # raises if the dataset lacks what it needs
    if ckpt is not None:  # the weights the run had reached (the processors' statistics are the dataset's)
        load_model(policy, ckpt / WEIGHTS)
    pre, post = make_pre_post_processors(config, dataset_stats=demo.lerobot.meta.stats)
    return policy, pre, post


def peer_objective(policy, pre, post, cache: DemoCache, batch_size: int, info: dict[str, Any]) -> Objective:
    """The loop's objective for a LeRobot policy: LeRobot's loss on batches cut from `cache`, its
    optimizer and scheduler presets, and its own save_pretrained folder (policy and processors).
    `info["final_loss"]` follows the mean loss of the last 50 steps (train_info.json reads it)."""
    config = policy.config
    optim, sched = config.get_optimizer_preset(), config.get_scheduler_preset()
    K = _horizon(config)
    n_obs = int(config.n_obs_steps) if config.type == "diffusion" else 0
    recent: deque[float] = deque(maxlen=50)
    info.update(optimizer={"type": optim.type, **asdict(optim)}, final_loss=None,
                scheduler={"type": sched.type, **asdict(sched)} if sched is not None else None)

    def step(model, generator: torch.Generator, rng) -> tuple[torch.Tensor, dict[str, float]]:
        index = torch.randint(0, len(cache), (batch_size,), generator=generator)
        loss, _ = model.forward(pre(_batch(cache, index, K, n_obs)))
        recent.append(loss.item())
        info["final_loss"] = round(sum(recent) / len(recent), 5)
        return loss, {"loss": recent[-1]}

    def save(model, path: Path) -> None:
        model.save_pretrained(path)
        pre.save_pretrained(path)
        post.save_pretrained(path)

    def schedule(optimizer: Optimizer, cfg: TrainConfig, steps: int) -> LRScheduler:
        # LeRobot's scheduler is built for a total (Diffusion Policy's cosine ends at it), so the
        # loop rebuilds it when a time budget fixes the total; ACT has none: a constant rate.
        built = sched.build(optimizer, steps) if sched is not None else None
        return built if built is not None else LambdaLR(optimizer, lambda _: 1.0)

    return Objective(tag=config.type, model=policy, step=step, save=save, metrics=["loss"], info=info,
                     optimizer=lambda model, cfg: optim.build(model.get_optim_params()), schedule=schedule)


def _batch(cache: DemoCache, index: torch.Tensor, K: int, n_obs: int) -> dict[str, Any]:
    """The frames `index` as LeRobot's loader gives them, before its preprocessor."""
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
    return batch
