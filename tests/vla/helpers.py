"""Helpers shared by the tests of vla/: a tiny VLA model and its batches, camera observations for
it, the training configuration the training tests use, and a bit-for-bit checkpoint comparison."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import torch
from safetensors.torch import load_file

from vla.model.config import load_model_config
from vla.model.vla import Batch, VLAModel, new_model
from vla.train.loop import STATE_FILE

# The smallest towers that still have every part (vision, connector, a 2-layer language model).
MINI = dict(
    image_size=64,
    vision={"hidden_size": 32, "num_hidden_layers": 1, "num_attention_heads": 2, "intermediate_size": 64,
            "patch_size": 16},
    text={"hidden_size": 64, "num_hidden_layers": 2, "num_attention_heads": 2, "num_key_value_heads": 1,
          "intermediate_size": 128},
)
TEXTS = ["pick up the red cube", "push the blue cube to the left region"]
# The model overrides the training tests train with: smaller images, a short chunk.
TRAIN_MINI = {**MINI, "image_size": 32, "chunk_size": 4}


def mini_model(action_dim=6, state_dim=6, chunk_size=4, family="smolvlm", **kw) -> VLAModel:
    cfg = load_model_config("tiny", cameras=["top", "wrist"], state_dim=state_dim, action_dim=action_dim,
                            chunk_size=chunk_size, family=family, **{**MINI, **kw})
    torch.manual_seed(0)
    return new_model(cfg, TEXTS, -2 * np.ones(action_dim), 2 * np.ones(action_dim),
                     -2 * np.ones(state_dim), 2 * np.ones(state_dim))


def mini_batch(model: VLAModel, B=4, seed=0, size=64) -> Batch:
    g = torch.Generator().manual_seed(seed)
    cfg = model.config
    return Batch(torch.rand(B, 2, 3, size, size, generator=g), [TEXTS[i % 2] for i in range(B)],
                 torch.rand(B, cfg.state_dim, generator=g) * 2 - 1,
                 torch.rand(B, cfg.chunk_size, cfg.action_dim, generator=g) * 1.6 - 0.8)


def camera_obs(model: VLAModel, seed: int, noise: float = 0.0, base=None):
    """An observation for `model` with random 64x64 frames (or `base`), optionally with sensor noise;
    returns (observation, frames by camera)."""
    rng = np.random.default_rng(seed)
    imgs = base if base is not None else {c: rng.integers(0, 255, (64, 64, 3)).astype(np.uint8)
                                           for c in model.config.cameras}
    if noise:
        imgs = {c: np.clip(v + rng.normal(0, noise, v.shape), 0, 255).astype(np.uint8) for c, v in imgs.items()}
    obs = {f"observation.images.{c}": v for c, v in imgs.items()}
    obs.update({"observation.state": np.zeros(model.config.state_dim, np.float32), "task": "pick up the red cube"})
    return obs, imgs


def assert_same_checkpoint(a: Path, b: Path, weights: str) -> None:
    """Equal weights, optimizer state, schedule and step: bit for bit."""
    wa, wb = load_file(str(a / weights)), load_file(str(b / weights))
    assert wa.keys() == wb.keys() and all(torch.equal(wa[k], wb[k]) for k in wa), "weights differ"
    sa = torch.load(a / STATE_FILE, weights_only=True)
    sb = torch.load(b / STATE_FILE, weights_only=True)
    assert sa["step"] == sb["step"]
    assert sa["scheduler"] == sb["scheduler"], "LR schedule differs"
    assert sa["optimizer"]["param_groups"] == sb["optimizer"]["param_groups"]
    oa, ob = sa["optimizer"]["state"], sb["optimizer"]["state"]
    assert oa.keys() == ob.keys()
    for i in oa:
        assert all(torch.equal(oa[i][k], ob[i][k]) for k in oa[i]), f"optimizer state of parameter {i} differs"
