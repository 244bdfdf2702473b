"""A LeRobot policy checkpoint behind the Policy contract, so `vla eval --policy DIR` scores it.

The checkpoint is what LeRobot's `save_pretrained` writes (its `config.json` with a `type`, the
safetensors weights, and the pre/post-processor pipelines with their normalization statistics).
Each control step goes through LeRobot's own path: preprocessor (batch dimension, device,
normalization) -> `policy.select_action` (the policy's own action queue, n_action_steps per
inference) -> postprocessor (unnormalization). One action is returned per call, so the
policy's queue, not our executor, decides when it re-plans.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import numpy as np
import torch

from vla.types import OBS_STATE, TASK, Observation, camera_of, check_observation, image_key


def is_lerobot_checkpoint(path: str | Path) -> bool:
    """A folder holding a LeRobot policy config (`type` in config.json) rather than a VLA checkpoint."""
    cfg = Path(path) / "config.json"
    if not cfg.is_file():
        return False
    try:
        data = json.loads(cfg.read_text())
    except json.JSONDecodeError:
        return False
    return isinstance(data, dict) and "type" in data and "vla" not in data


class LeRobotPolicy:
    def __init__(self, policy, preprocessor, postprocessor, name: str, fps: float = 10.0):
        self.policy = policy.eval()
        self.preprocessor = preprocessor
        self.postprocessor = postprocessor
        cfg = policy.config
        self.cameras = [camera_of(k) for k in cfg.image_features]
        self.state_dim = int(cfg.robot_state_feature.shape[0]) if cfg.robot_state_feature else 0
        self.action_dim = int(cfg.action_feature.shape[0])
        self.image_shapes = {camera_of(k): tuple(v.shape) for k, v in cfg.image_features.items()}
        self.metadata: dict[str, Any] = {
            "name": name, "type": cfg.type, "cameras": self.cameras, "state_dim": self.state_dim,
            "action_dim": self.action_dim, "fps": fps,
            "chunk_size": int(getattr(cfg, "chunk_size", 1)), "n_action_steps": 1,  # LeRobot queues its own chunk
        }

    @classmethod
    def from_pretrained(cls, path: str | Path, device: str | None = None) -> LeRobotPolicy:
        from lerobot.configs.policies import PreTrainedConfig
        from lerobot.policies.factory import get_policy_class, make_pre_post_processors

        path = Path(path)
        if not is_lerobot_checkpoint(path):
            raise ValueError(f"{path} is not a LeRobot policy checkpoint (config.json with a 'type')")
        cfg = PreTrainedConfig.from_pretrained(path)
        cfg.device = device or ("cuda" if torch.cuda.is_available() else "cpu")
        cfg.pretrained_path = path
        policy = get_policy_class(cfg.type).from_pretrained(path, config=cfg)
        pre, post = make_pre_post_processors(cfg, pretrained_path=str(path),
                                             preprocessor_overrides={"device_processor": {"device": cfg.device}})
        fps = 10.0
        info = path / "train_info.json"
        if info.is_file():
            fps = float(json.loads(info.read_text()).get("fps", fps))
        return cls(policy, pre, post, name=path.name, fps=fps)

    def reset(self) -> None:
        self.policy.reset()

    def _batch(self, obs: Observation) -> dict[str, Any]:
        frames, state = check_observation(obs, self.cameras, self.state_dim)
        batch: dict[str, Any] = {}
        for cam, img in zip(self.cameras, frames, strict=True):
            t = torch.from_numpy(img).permute(2, 0, 1).float().div(255)[None]
            want = self.image_shapes[cam][-2:]
            if tuple(t.shape[-2:]) != want:  # documented automatic resize to the trained size
                t = torch.nn.functional.interpolate(t, size=want, mode="bilinear", antialias=True)
            batch[image_key(cam)] = t
        batch[OBS_STATE] = torch.from_numpy(state)[None]
        batch[TASK] = [obs[TASK]]
        return batch

    @torch.no_grad()
    def predict_chunk(self, obs: Observation) -> np.ndarray:
        batch = self.preprocessor(self._batch(obs))
        action = self.postprocessor(self.policy.select_action(batch))
        return action.reshape(1, self.action_dim).float().cpu().numpy().astype(np.float32)
