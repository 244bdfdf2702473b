"""Open-loop validation: how far a policy's predicted chunks are from held-out demonstrations.

The offline metric for a robot without a simulator: record a few demonstrations the policy never
trained on (`vla record --seed ...`, or your own teleoperated episodes), then
`vla eval --policy DIR --heldout DATASET`.
"""

from __future__ import annotations

from pathlib import Path

import torch

from vla.data import open_dataset
from vla.model.vla import Batch, VLAModel
from vla.train.data import DemoCache
from vla.train.trainer import vision_image_size


@torch.no_grad()
def open_loop_error(model: VLAModel, heldout: str | Path, decoding: str | None = None,
                    batch_size: int = 64) -> dict[str, float]:
    """Mean absolute error of the predicted chunk against the held-out demonstrations' actions.

    `arm_mrad_first` / `arm_mrad_executed`: arm joints (all but the last action dimension, the
    gripper, as `RobotConfig.all_joints` in vla/robot.py orders them), over the first action / the first
    `n_action_steps` actions, in thousandths of the action's unit (milliradians for radian joints);
    `gripper_executed`: the gripper dimension over the executed actions, in its own units.
    `hold_still`: the same for a policy that keeps the arm where it is (the floor to beat).
    `decoding`: the policy's own mode unless given."""
    cfg = model.config
    cache = DemoCache.from_dataset(open_dataset(heldout), cfg.chunk_size, vision_image_size(cfg), progress=False,
                                   state_keys=cfg.state_keys)
    if cache.cameras != list(cfg.cameras):
        raise ValueError(f"held-out dataset cameras {cache.cameras} differ from the policy's {list(cfg.cameras)}")
    model.eval()
    errors = []
    for start in range(0, len(cache), batch_size):
        index = torch.arange(start, min(start + batch_size, len(cache)))
        batch = Batch(cache.images[index], [cache.texts[i] for i in cache.text_index[index]],
                      cache.state[index])
        errors.append((model.predict(batch, decoding) - cache.chunk(index)).abs())
    err = torch.cat(errors).numpy()  # (N, K, D)
    hold = (cache.chunk(torch.arange(len(cache))) - cache.state[:, None, : cfg.action_dim]).abs().numpy()
    E = cfg.n_action_steps
    return {
        "frames": int(err.shape[0]),
        "arm_mrad_first": round(float(err[:, 0, :-1].mean() * 1e3), 2),
        "arm_mrad_executed": round(float(err[:, :E, :-1].mean() * 1e3), 2),
        "gripper_executed": round(float(err[:, :E, -1].mean()), 5),
        # The same errors for a policy that holds the arm where it is: the floor to beat.
        "hold_still": {"arm_mrad_first": round(float(hold[:, 0, :-1].mean() * 1e3), 2),
                       "arm_mrad_executed": round(float(hold[:, :E, :-1].mean() * 1e3), 2),
                       "gripper_executed": round(float(hold[:, :E, -1].mean()), 5)},
    }
