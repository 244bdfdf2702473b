"""The trained VLA behind the Policy contract: observation dict in, chunk of joint targets out."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import numpy as np
import torch

from vla.model.vla import Batch, VLAModel
from vla.types import OBS_IMAGES_PREFIX, OBS_STATE, TASK, Observation, image_key


class VLAPolicy:
    """Wraps a `VLAModel` checkpoint. `predict_chunk` returns the first `execute_steps` actions of
    each predicted chunk (receding horizon), float32 absolute joint targets."""

    def __init__(self, model: VLAModel, decoding: str | None = None, execute_steps: int | None = None,
                 name: str = "vla", fast: bool | None = None):
        self.model = model.eval()
        cfg = model.config
        self.decoding = decoding or cfg.decoding
        self.execute_steps = execute_steps or cfg.execute_steps
        if not 1 <= self.execute_steps <= cfg.chunk_length:
            raise ValueError(f"execute_steps={self.execute_steps}; expected 1..{cfg.chunk_length}")
        self.metadata: dict[str, Any] = {
            "name": name, "cameras": list(cfg.cameras), "state_dim": cfg.state_dim, "action_dim": cfg.action_dim,
            "chunk_length": self.execute_steps, "model_chunk_length": cfg.chunk_length, "fps": cfg.fps,
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
        return cls(VLAModel.from_pretrained(path, device=device), name=Path(path).name, **kw)

    def reset(self) -> None:
        """Stateless between chunks: nothing to clear."""

    def _inputs(self, obs: Observation) -> Batch:
        cfg = self.model.config
        given = sorted(k[len(OBS_IMAGES_PREFIX):] for k in obs if k.startswith(OBS_IMAGES_PREFIX))
        if given != sorted(cfg.cameras):
            raise ValueError(f"observation has cameras {given}; this policy was trained with {cfg.cameras}")
        frames = []
        for cam in cfg.cameras:
            img = np.asarray(obs[image_key(cam)])
            if img.dtype != np.uint8 or img.ndim != 3 or img.shape[2] != 3:
                raise ValueError(f"{image_key(cam)}: expected uint8 H x W x 3, got {img.dtype} {img.shape}")
            frames.append(torch.from_numpy(img).permute(2, 0, 1))
        sizes = {tuple(f.shape) for f in frames}
        if len(sizes) > 1:  # cameras of different sizes: bring them to the vision tower's size first
            S = self.model.vision_size
            frames = [torch.nn.functional.interpolate(f[None].float(), size=(S, S), mode="bilinear",
                                                      antialias=True)[0] for f in frames]
        state = np.asarray(obs[OBS_STATE], dtype=np.float32)
        if state.shape != (cfg.state_dim,) or not np.all(np.isfinite(state)):
            raise ValueError(f"{OBS_STATE}: expected {cfg.state_dim} finite values, got shape {state.shape}")
        task = obs.get(TASK)
        if not isinstance(task, str) or not task.strip():
            raise ValueError(f"observation needs a non-empty '{TASK}' instruction, got {task!r}")
        device = self.model.device
        images = torch.stack(frames)[None].float().div(255).to(device)  # (1, N, 3, H, W)
        return Batch(images, [task], torch.from_numpy(state)[None].to(device))

    @torch.no_grad()
    def predict_chunk(self, obs: Observation) -> np.ndarray:
        batch = self._inputs(obs)
        if self.fast is not None:
            S = self.model.vision_size
            frames = [np.asarray(obs[image_key(c)]) for c in self.model.config.cameras]
            if any(f.shape[:2] != (S, S) for f in frames):  # the static path takes the tower's size
                small = torch.nn.functional.interpolate(batch.images[0].cpu(), size=(S, S), mode="bilinear",
                                                        antialias=True)
                frames = list(small.mul(255).round().clamp(0, 255).byte().permute(0, 2, 3, 1).numpy())
            state = batch.state[0].cpu().numpy()
            return self.fast.predict(frames, batch.tasks[0], state, self.decoding)[: self.execute_steps] \
                .astype(np.float32)
        actions = self.model.predict(batch, self.decoding)[0, : self.execute_steps]
        return actions.float().cpu().numpy().astype(np.float32)
