"""The trained VLA behind the Policy contract: observation dict in, chunk of joint targets out."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import numpy as np
import torch

from vla.model.vla import Batch, VLAModel, trains_decoding
from vla.types import TASK, Observation, check_observation


class VLAPolicy:
    """Wraps a `VLAModel` checkpoint. `predict_chunk` returns the first `n_action_steps` actions of
    each predicted chunk (receding horizon), float32 absolute joint targets."""

    def __init__(self, model: VLAModel, decoding: str | None = None, n_action_steps: int | None = None,
                 name: str = "vla", fast: bool | None = None):
        self.model = model.eval()
        cfg = model.config
        self.decoding = decoding or cfg.decoding
        self.n_action_steps = n_action_steps or cfg.n_action_steps
        if not 1 <= self.n_action_steps <= cfg.chunk_size:
            raise ValueError(f"n_action_steps={self.n_action_steps}; expected 1..{cfg.chunk_size}")
        self.metadata: dict[str, Any] = {
            "name": name, "cameras": list(cfg.cameras), "state_dim": cfg.state_dim, "action_dim": cfg.action_dim,
            "chunk_size": cfg.chunk_size, "n_action_steps": self.n_action_steps, "fps": cfg.fps,
            "decoding": self.decoding, "joint_names": list(cfg.joint_names),
        }
        # On a GPU the static, compiled, half-precision path (vla.model.fast) runs each step.
        self.fast = None
        if fast or (fast is None and model.device.type == "cuda"):
            from vla.model.fast import FastVLA

            self.fast = FastVLA(model, model.device)
            self.metadata["engine"] = self.fast.describe()

    @classmethod
    def from_pretrained(cls, path: str | Path, device: str | None = None, **kw) -> VLAPolicy:
        device = device or ("cuda" if torch.cuda.is_available() else "cpu")
        model = VLAModel.from_pretrained(path, device=device)
        _check_decoding_trained(Path(path), kw.get("decoding") or model.config.decoding)
        return cls(model, name=Path(path).name, **kw)

    def reset(self) -> None:
        """Stateless between chunks: nothing to clear."""

    def _inputs(self, obs: Observation) -> Batch:
        cfg = self.model.config
        frames, state = check_observation(obs, cfg.cameras, cfg.state_dim)
        images = [torch.from_numpy(f).permute(2, 0, 1) for f in frames]
        if len({tuple(f.shape) for f in images}) > 1:  # cameras of different sizes: to the tower's size first
            S = self.model.vision_size
            images = [torch.nn.functional.interpolate(f[None].float(), size=(S, S), mode="bilinear",
                                                      antialias=True)[0] for f in images]
        device = self.model.device
        batch_images = torch.stack(images)[None].float().div(255).to(device)  # (1, N, 3, H, W)
        return Batch(batch_images, [obs[TASK]], torch.from_numpy(state)[None].to(device))

    @torch.no_grad()
    def predict_chunk(self, obs: Observation) -> np.ndarray:
        if self.fast is not None:
            cfg = self.model.config
            frames, state = check_observation(obs, cfg.cameras, cfg.state_dim)
            S = self.model.vision_size
            if any(f.shape[:2] != (S, S) for f in frames):  # the static path takes the tower's size
                images = self._inputs(obs).images[0].cpu()
                small = torch.nn.functional.interpolate(images, size=(S, S), mode="bilinear", antialias=True)
                frames = list(small.mul(255).round().clamp(0, 255).byte().permute(0, 2, 3, 1).numpy())
            return self.fast.predict(frames, obs[TASK], state, self.decoding)[: self.n_action_steps].astype(np.float32)
        batch = self._inputs(obs)
        actions = self.model.predict(batch, self.decoding)[0, : self.n_action_steps]
        return actions.float().cpu().numpy().astype(np.float32)


def _check_decoding_trained(path: Path, decoding: str) -> None:
    """Refuse a decoding mode the checkpoint never trained (`vla train --parallel-fraction 1` or 0):
    it would emit untrained actions. Checkpoints without train_info.json are not checked."""
    info = path / "train_info.json"
    fraction = json.loads(info.read_text()).get("train_config", {}).get("parallel_fraction") if info.is_file() else None
    if fraction is not None and not trains_decoding(fraction, decoding):
        other = "parallel" if decoding == "autoregressive" else "autoregressive"
        raise ValueError(f"{path} was trained for {other} decoding only (train_info.json: parallel_fraction="
                         f"{fraction}); {decoding} decoding would emit untrained actions. Use --decoding {other}, "
                         "or retrain with 0 < --parallel-fraction < 1 to serve both")
