"""Which patches of a fixed camera the arm itself covers, predicted from its joint state: the arm discount
of the event trigger.

A camera that does not move with the arm sees the arm's own motion as change. The trigger must not
mistake that for an event (a cube moved, a person reaching in), so it discounts the patches the arm
covers now or covered when the patch was last encoded. Those patches are a function of the joint
state for a given robot and camera placement, learned once per robot from a calibration recording:
the arm moving through its workspace over a cleared table.

- `arm_patches` labels the recording: the background is the per-pixel median of its frames (the arm
  moves, the table stays), and a patch is the arm's where enough of its pixels differ from it (the
  arm's shadow counts: it moves with the arm).
- `ArmMask.fit` learns joint state -> per-patch probability (a small MLP, torch); `ArmMask.patches`
  predicts with numpy in a few microseconds, at every control step; `save`/`load` use one safetensors
  file (`ARM_MASK` in a policy folder, beside the weights the camera views were trained with).

In the simulator the recording is rendered (`vla arm-mask`: the expert's joint states replayed over the
cleared table); on a real robot it is a LeRobot dataset of the same motion with the table cleared.
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from pathlib import Path

import numpy as np

ARM_MASK = "arm_mask.safetensors"


def arm_patches(frames: np.ndarray, grid: int, level: int = 30, min_fraction: float = 0.1) -> np.ndarray:
    """(N, H, W, 3) uint8 frames of one camera, the arm moving over a cleared table -> (N, grid, grid) bool:
    the patches where at least `min_fraction` of the pixels differ from the background by more than
    `level` (summed over the colour channels, levels of 255). The background is the per-pixel median of
    up to 2,000 of the frames, evenly spaced."""
    if frames.dtype != np.uint8 or frames.ndim != 4 or frames.shape[-1] != 3:
        raise ValueError(f"expected uint8 frames of shape (N, H, W, 3), got {frames.dtype} {frames.shape}")
    n, h, w, _ = frames.shape
    if h % grid or w % grid:
        raise ValueError(f"frames of {h}x{w} do not divide into a {grid}x{grid} patch grid")
    background = np.median(frames[:: max(1, n // 2000)], axis=0).astype(np.int16)
    labels = np.empty((n, grid, grid), dtype=bool)
    for start in range(0, n, 512):  # bounded memory: a block of frames at a time
        block = frames[start : start + 512].astype(np.int16)
        changed = np.abs(block - background).sum(-1) > level
        share = changed.reshape(len(block), grid, h // grid, grid, w // grid).mean((2, 4))
        labels[start : start + 512] = share >= min_fraction
    return labels


def _dilate(mask: np.ndarray, margin: int) -> np.ndarray:
    """Grow a (..., g, g) bool mask by `margin` patches in every direction (a square neighbourhood): rows, then
    columns, by shifted ORs (a few microseconds on an 8 x 8 grid; this runs at every control step)."""
    for _ in range(margin):
        grown = mask.copy()
        grown[..., 1:, :] |= mask[..., :-1, :]
        grown[..., :-1, :] |= mask[..., 1:, :]
        mask = grown.copy()
        mask[..., :, 1:] |= grown[..., :, :-1]
        mask[..., :, :-1] |= grown[..., :, 1:]
    return mask


@dataclass
class ArmMask:
    """Joint state -> the patches the arm covers, per camera. `layers`: the MLP's (weight, bias) pairs, ReLU
    between them; the state is standardized with `mean`/`std` first."""

    cameras: list[str]
    grid: int
    mean: np.ndarray
    std: np.ndarray
    layers: list[tuple[np.ndarray, np.ndarray]]

    @property
    def state_dim(self) -> int:
        return len(self.mean)

    def probabilities(self, state: np.ndarray) -> np.ndarray:
        """(N, cameras, g, g) for states (N, D), or (cameras, g, g) for one state (D,)."""
        state = np.asarray(state, dtype=np.float32)
        if state.shape[-1] != self.state_dim:
            raise ValueError(f"arm mask expects a joint state of {self.state_dim} values, got {state.shape}")
        x = (state - self.mean) / self.std
        for i, (weight, bias) in enumerate(self.layers):
            x = x @ weight + bias
            if i < len(self.layers) - 1:
                np.maximum(x, 0.0, out=x)
        return (1.0 / (1.0 + np.exp(-np.clip(x, -60.0, 60.0)))).reshape(
            *state.shape[:-1], len(self.cameras), self.grid, self.grid)

    def patches(self, state: np.ndarray, margin: int = 1) -> dict[str, np.ndarray]:
        """Per camera, the (g, g) bool patches the arm covers at `state`, grown by `margin` patches (the
        model's error at the arm's edges and the arm's motion within a frame)."""
        masks = _dilate(self.probabilities(state) >= 0.5, margin)
        return dict(zip(self.cameras, masks, strict=True))

    @classmethod
    def fit(cls, states: np.ndarray, labels: dict[str, np.ndarray], hidden: int = 256, steps: int = 3000,
            batch_size: int = 256, lr: float = 2e-3, seed: int = 0) -> ArmMask:
        """Learn the mask from joint states (N, D) and each camera's `arm_patches` labels (N, g, g)."""
        # deferred: fitting is torch's, predicting is numpy's (the trigger runs beside the robot's loop)
        import torch

        states = np.asarray(states, dtype=np.float32)
        if not labels:
            raise ValueError("no cameras to fit an arm mask for")
        grids = {cam: lab.shape[1:] for cam, lab in labels.items()}
        if len(set(grids.values())) != 1 or any(len(lab) != len(states) for lab in labels.values()):
            raise ValueError(f"labels must be (N={len(states)}, g, g) for every camera, got "
                             f"{ {cam: lab.shape for cam, lab in labels.items()} }")
        grid = next(iter(grids.values()))[0]
        mean, std = states.mean(0), np.maximum(states.std(0), 1e-3)
        x = torch.from_numpy((states - mean) / std)
        y = torch.from_numpy(np.stack([labels[c].reshape(len(states), -1) for c in labels], 1).reshape(len(states), -1)
                             .astype(np.float32))
        gen = torch.Generator().manual_seed(seed)
        with torch.random.fork_rng():  # a seeded initialization that leaves the caller's RNG as it was
            torch.manual_seed(seed)
            net = torch.nn.Sequential(torch.nn.Linear(states.shape[1], hidden), torch.nn.ReLU(),
                                      torch.nn.Linear(hidden, hidden), torch.nn.ReLU(),
                                      torch.nn.Linear(hidden, y.shape[1]))
        opt = torch.optim.Adam(net.parameters(), lr=lr)
        sched = torch.optim.lr_scheduler.CosineAnnealingLR(opt, steps)
        for _ in range(steps):
            idx = torch.randint(0, len(x), (batch_size,), generator=gen)
            loss = torch.nn.functional.binary_cross_entropy_with_logits(net(x[idx]), y[idx])
            opt.zero_grad()
            loss.backward()
            opt.step()
            sched.step()
        linear = [m for m in net if isinstance(m, torch.nn.Linear)]
        layers = [(m.weight.detach().T.contiguous().numpy(), m.bias.detach().numpy()) for m in linear]
        return cls(list(labels), int(grid), mean, std, layers)

    def save(self, path: str | Path) -> Path:
        from safetensors.numpy import save_file

        tensors = {"mean": self.mean, "std": self.std}
        for i, (weight, bias) in enumerate(self.layers):
            tensors[f"layer{i}.weight"], tensors[f"layer{i}.bias"] = weight, bias
        path = Path(path)
        save_file({k: np.ascontiguousarray(v, dtype=np.float32) for k, v in tensors.items()}, str(path),
                  metadata={"cameras": json.dumps(self.cameras), "grid": str(self.grid)})
        return path

    @classmethod
    def load(cls, path: str | Path) -> ArmMask:
        from safetensors import safe_open

        path = Path(path)
        if not path.is_file():
            raise FileNotFoundError(f"arm mask {path} not found (make one with `vla arm-mask`)")
        with safe_open(str(path), "np") as f:
            meta = f.metadata() or {}
            if "cameras" not in meta or "grid" not in meta:
                raise ValueError(f"{path} is not an arm mask: its metadata lacks cameras and grid")
            t = {k: f.get_tensor(k) for k in f.keys()}
        n = sum(k.endswith(".weight") for k in t)
        layers = [(t[f"layer{i}.weight"], t[f"layer{i}.bias"]) for i in range(n)]
        return cls(json.loads(meta["cameras"]), int(meta["grid"]), t["mean"], t["std"], layers)


def calibrate(states: np.ndarray, frames: dict[str, np.ndarray], episodes: np.ndarray, grid: int,
              heldout_every: int = 5, margin: int = 1, seed: int = 0) -> tuple[ArmMask, dict]:
    """Label a calibration recording (`arm_patches`), fit an `ArmMask` on its episodes but every
    `heldout_every`-th, and score it on those: precision and recall of the predicted patches, and at
    `margin` the arm patches still missed and the share of the image discounted."""
    states = np.asarray(states, dtype=np.float32)
    episodes = np.asarray(episodes)
    if heldout_every < 2:
        raise ValueError(f"heldout_every={heldout_every}; expected >= 2 (one episode in that many is held out)")
    if len(np.unique(episodes)) < heldout_every:
        raise ValueError(f"{len(np.unique(episodes))} episodes; at least {heldout_every} are needed to hold one out")
    labels = {cam: arm_patches(f, grid) for cam, f in frames.items()}
    held = np.isin(episodes, np.unique(episodes)[heldout_every - 1 :: heldout_every])
    mask = ArmMask.fit(states[~held], {cam: lab[~held] for cam, lab in labels.items()}, seed=seed)
    predicted = mask.probabilities(states[held]) >= 0.5
    report: dict = {"frames": int(len(states)), "heldout_frames": int(held.sum()), "grid": grid,
                    "margin": margin, "cameras": {}}
    for c, cam in enumerate(mask.cameras):
        truth, guess = labels[cam][held], predicted[:, c]
        grown = _dilate(guess, margin)
        hit = float((guess & truth).sum())
        report["cameras"][cam] = {
            "arm_share": round(float(truth.mean()), 4),
            "precision": round(hit / max(float(guess.sum()), 1.0), 4),
            "recall": round(hit / max(float(truth.sum()), 1.0), 4),
            "recall_at_margin": round(float((grown & truth).sum()) / max(float(truth.sum()), 1.0), 4),
            "discounted_share_at_margin": round(float(grown.mean()), 4),
            "frames_with_a_missed_patch_at_margin": round(float((truth & ~grown).any((1, 2)).mean()), 4)}
    return mask, report
