"""The trained VLA behind the Policy contract: observation dict in, chunk of joint targets out."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import numpy as np
import torch

from vla.model.fast import FastVLA
from vla.model.inputs import Batch, observation_batch
from vla.model.vla import VLAModel, trains_decoding
from vla.types import Observation


class VLAPolicy:
    """Wraps a `VLAModel` checkpoint. `predict_chunk` returns the first `n_action_steps` actions of
    each predicted chunk (receding horizon), float32 absolute joint targets."""

    def __init__(self, model: VLAModel, decoding: str | None = None, n_action_steps: int | None = None,
                 name: str = "vla", fast: bool | None = None):
        self.model = model.eval()
        cfg = model.config
        self.decoding = decoding or cfg.decoding
        self.n_action_steps = cfg.executed_steps(n_action_steps)
        if self.decoding == "autoregressive" and not cfg.decodes_autoregressively:  # at load, not mid-episode
            raise ValueError(f"autoregressive decoding needs the bins head with per_dim tokens; this policy has "
                             f"{cfg.action_head} / {cfg.action_tokens}: use --decoding parallel")
        self.metadata: dict[str, Any] = {
            "name": name, "cameras": list(cfg.cameras), "state_dim": cfg.state_dim, "action_dim": cfg.action_dim,
            "state_keys": list(cfg.state_keys), "chunk_size": cfg.chunk_size, "n_action_steps": self.n_action_steps,
            "fps": cfg.fps, "decoding": self.decoding, "joint_names": list(cfg.joint_names),
        }
        # On a GPU the static, compiled, half-precision path (vla.model.fast) runs each step.
        self.fast = None
        if fast or (fast is None and model.device.type == "cuda"):
            self.fast = FastVLA(model, model.device)
            self.metadata["engine"] = self.fast.describe()

    @classmethod
    def from_pretrained(cls, path: str | Path, device: str | None = None, **kw) -> VLAPolicy:
        device = device or ("cuda" if torch.cuda.is_available() else "cpu")
        model = VLAModel.from_pretrained(path, device=device)
        check_decoding_trained(Path(path), kw.get("decoding") or model.config.decoding)
        return cls(model, name=Path(path).name, **kw)

    def reset(self) -> None:
        """Stateless between chunks: nothing to clear."""

    def inputs(self, obs: Observation) -> Batch:
        """The observation, checked, on the model's device and at the tower's size (the one way in)."""
        if self.fast is not None:
            return self.fast.inputs(obs)
        return observation_batch(obs, self.model.config, self.model.vision_size, self.model.device)

    @torch.no_grad()
    def predict_chunk(self, obs: Observation) -> np.ndarray:
        batch = self.inputs(obs)
        if self.fast is not None:
            chunk = self.fast.predict(batch, self.decoding)
        else:
            chunk = self.model.predict(batch, self.decoding)[0].cpu().numpy()
        return chunk[: self.n_action_steps].astype(np.float32)


def check_decoding_trained(path: Path, decoding: str) -> None:
    """Refuse a decoding mode the checkpoint never trained (`vla train --parallel-fraction 1` or 0):
    it would emit untrained actions. Checkpoints without train_info.json are not checked."""
    info = path / "train_info.json"
    fraction = json.loads(info.read_text()).get("train_config", {}).get("parallel_fraction") if info.is_file() else None
    if fraction is not None and not trains_decoding(fraction, decoding):
        other = "parallel" if decoding == "autoregressive" else "autoregressive"
        raise ValueError(f"{path} was trained for {other} decoding only (train_info.json: parallel_fraction="
                         f"{fraction}); {decoding} decoding would emit untrained actions. Use --decoding {other}, "
                         "or retrain with 0 < --parallel-fraction < 1 to serve both")
