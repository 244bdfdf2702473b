"""`vla dataset info`: what a dataset holds, and a picture of its first frames."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import numpy as np
from PIL import Image

from vla.data.dataset import DemoDataset, uint8_image
from vla.types import OBS_IMAGES_PREFIX


def dataset_info(ds: DemoDataset) -> dict[str, Any]:
    meta = ds.lerobot.meta
    return {
        "root": str(meta.root),
        "codebase_version": meta.info.get("codebase_version"),
        "robot_type": ds.robot_type,
        "episodes": ds.num_episodes,
        "frames": ds.num_frames,
        "fps": ds.fps,
        "cameras": ds.cameras,
        "features": {k: {"dtype": f["dtype"], "shape": list(f["shape"])} for k, f in ds.features.items()},
        "tasks": ds.tasks,
    }


def format_info(info: dict[str, Any]) -> str:
    """The info dict as a short human-readable page."""
    lines = [
        f"dataset   {info['root']} (LeRobot {info['codebase_version']}, robot {info['robot_type']})",
        f"episodes  {info['episodes']}    frames {info['frames']}    fps {info['fps']}",
        "features",
    ]
    width = max(len(k) for k in info["features"])
    for key, f in info["features"].items():
        lines.append(f"  {key:<{width}}  {f['dtype']:<8} {'x'.join(str(d) for d in f['shape'])}")
    lines.append(f"tasks ({len(info['tasks'])})")
    lines += [f"  {t}" for t in info["tasks"]]
    if "first_frames_png" in info:
        lines.append(f"first frames: {info['first_frames_png']}")
    return "\n".join(lines)


def first_frames_grid(ds: DemoDataset, path: str | Path, max_episodes: int = 4) -> Path:
    """A PNG with one row per episode (its first frame), one column per camera."""
    episodes = ds.lerobot.meta.episodes
    rows = []
    for ep in range(min(max_episodes, ds.num_episodes)):
        sample = ds.lerobot[int(episodes[ep]["dataset_from_index"])]
        images = []
        for cam in ds.cameras:
            images.append(uint8_image(sample[OBS_IMAGES_PREFIX + cam]))
        height = max(i.shape[0] for i in images)
        rows.append(np.concatenate([np.pad(i, ((0, height - i.shape[0]), (0, 2), (0, 0))) for i in images], axis=1))
    width = max(r.shape[1] for r in rows)
    grid = np.concatenate([np.pad(r, ((0, 2), (0, width - r.shape[1]), (0, 0))) for r in rows], axis=0)
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    Image.fromarray(grid).save(path)
    return path
