"""One way into the model: an observation is checked, uploaded and resized here, and nowhere else.

    observation dict -> check (cameras, state size, dtypes, instruction)
                     -> camera frames to the target device as uint8 (4x fewer bytes than float;
                        from pinned host memory when the caller keeps a buffer)
                     -> resized once to the vision tower's square size where a camera differs
                     -> `Batch` (images, instructions, state) on that device

Images stay uint8 when no resize was needed and are float in [0, 1] otherwise; the model's
`pixel_values` is the one place that normalizes either (divide by 255 once, then the backbone's
mean and std). Training (`vla.train.data`), inference (`VLAPolicy`, the static GPU path, the
event-sparse policy) and the planner all build their batches here.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import torch
import torch.nn.functional as F

from vla.model.config import VLAConfig
from vla.types import TASK, Observation, check_observation


@dataclass
class Batch:
    """Model inputs on one device.

    images: (B, N, 3, H, W), uint8 or float in [0, 1]; state: (B, S) float32;
    actions: (B, K, D) absolute targets and aux: (B, A) grounding targets, for training."""

    images: torch.Tensor
    tasks: list[str]
    state: torch.Tensor
    actions: torch.Tensor | None = None
    aux: torch.Tensor | None = None  # (B, A) training-only grounding targets (`VLAConfig.aux_targets`)


def resize(images: torch.Tensor, size: int) -> torch.Tensor:
    """(..., 3, H, W) float images -> (..., 3, size, size), bilinear with antialiasing: the one
    resize of the stack. A no-op when the size already matches."""
    if images.shape[-2:] == (size, size):
        return images
    lead = images.shape[:-3]
    out = F.interpolate(images.reshape(-1, *images.shape[-3:]), size=(size, size), mode="bilinear",
                        antialias=True, align_corners=False)
    return out.reshape(*lead, *out.shape[-3:])


def frames_to_cache(images: torch.Tensor, size: int) -> torch.Tensor:
    """(..., 3, H, W) camera frames (uint8, or float in [0, 1]) -> uint8 at the vision tower's square
    `size`: how every training cache holds its frames (4x fewer bytes than float), resized as inference
    resizes (`resize`) and rounded to the nearest level. uint8 frames of the right size pass unchanged."""
    if images.dtype == torch.uint8:
        if images.shape[-2:] == (size, size):
            return images
        images = images.float() / 255
    return (resize(images, size) * 255).round().clamp(0, 255).to(torch.uint8)


def frames_to_device(frames: list[np.ndarray], size: int, device: torch.device,
                     pinned: torch.Tensor | None = None) -> torch.Tensor:
    """Camera frames (H, W, 3) uint8 -> (1, N, 3, size, size) on `device`.

    Uploaded as uint8; a camera not at `size` is resized on the device (then float in [0, 1])."""
    same = len({f.shape for f in frames}) == 1
    if same and pinned is not None and tuple(pinned.shape[1:]) == frames[0].shape:
        for i, f in enumerate(frames):
            pinned[i].copy_(torch.from_numpy(f))
        host = pinned
    elif same:
        host = torch.from_numpy(np.stack(frames))
    else:  # cameras of different sizes: each goes up and is resized on its own
        one = [frames_to_device([f], size, device)[0, 0] for f in frames]
        return torch.stack([x.float().div(255) if x.dtype == torch.uint8 else x for x in one])[None]
    images = host.to(device, non_blocking=True).permute(0, 3, 1, 2)[None]  # (1, N, 3, H, W) uint8
    if images.shape[-2:] != (size, size):
        images = resize(images.float().div(255), size)
    return images


def observation_batch(obs: Observation, config: VLAConfig, size: int, device: torch.device,
                      pinned: torch.Tensor | None = None) -> Batch:
    """A checked observation as a batch of one for a model of `config` whose tower takes `size`;
    raises ValueError naming what does not match."""
    frames, state = check_observation(obs, config.cameras, config.state_dim, config.state_keys)
    frames = [np.ascontiguousarray(f) for f in frames]
    state_t = torch.from_numpy(np.asarray(state, dtype=np.float32))[None].to(device, non_blocking=True)
    return Batch(frames_to_device(frames, size, device, pinned), [obs[TASK]], state_t)


def pinned_frames(cameras: int, size: int, device: torch.device) -> torch.Tensor | None:
    """A reusable page-locked (N, size, size, 3) uint8 host buffer for uploads to a CUDA device."""
    if device.type != "cuda":
        return None
    return torch.empty((cameras, size, size, 3), dtype=torch.uint8, pin_memory=True)
