"""Loading LeRobot v3.0 datasets for training: validation, chunked actions, statistics."""

from __future__ import annotations

import json
import logging
from pathlib import Path
from typing import Any

import numpy as np

from vla.types import ACTION, OBS_IMAGES_PREFIX, OBS_STATE, PRIVILEGED

SUPPORTED_VERSION = "v3.0"
# Decoding with PyAV needs no system FFmpeg (torchcodec does); it is LeRobot's fallback too.
DEFAULT_VIDEO_BACKEND = "pyav"
CONVERT_HINT = (
    "convert it with LeRobot's script: python -m lerobot.scripts.convert_dataset_v21_to_v30 "
    "--repo-id=<name> --root={root} --push-to-hub=false"
)


def quiet_datasets() -> None:
    """Hide the `datasets` library's per-operation progress bars; ours say what matters."""
    # deferred: `datasets` comes with lerobot (train extra); the ROS recorder node imports vla.data without it
    from datasets.utils.logging import disable_progress_bar

    disable_progress_bar()


class DatasetError(ValueError):
    """The dataset is missing, of another format, or lacks what is needed."""


def _read_info(root: Path) -> dict[str, Any]:
    info_path = root / "meta" / "info.json"
    if not root.is_dir():
        raise DatasetError(f"dataset directory {root} does not exist")
    if not info_path.is_file():
        hint = "; older LeRobot datasets (v2.x) also have it" if (root / "data").is_dir() else ""
        raise DatasetError(
            f"{root} is not a LeRobot dataset: {info_path} is missing{hint}. "
            "Expected a LeRobot v3.0 dataset (meta/info.json, meta/episodes/, data/), e.g. one made with `vla record`."
        )
    try:
        return json.loads(info_path.read_text())
    except json.JSONDecodeError as exc:
        raise DatasetError(f"{info_path} is not valid JSON: {exc}") from exc


def check_local_dataset(root: str | Path) -> dict[str, Any]:
    """Validate a local dataset directory before LeRobot touches it (it would try the hub otherwise)."""
    root = Path(root)
    info = _read_info(root)
    version = str(info.get("codebase_version", "unknown"))
    if version != SUPPORTED_VERSION:
        message = f"{root} is a LeRobot dataset of format {version}; this stack reads {SUPPORTED_VERSION}"
        if version.startswith("v2"):
            message += "; " + CONVERT_HINT.format(root=root)
        raise DatasetError(message)
    return info


def camera_keys(features: dict[str, Any]) -> list[str]:
    return [k for k, f in features.items() if k.startswith(OBS_IMAGES_PREFIX) and f["dtype"] in ("video", "image")]


def require_features(features: dict[str, Any], needed: list[str], where: str, need_camera: bool = True) -> None:
    """Fail with the names of the missing features and the features there are."""
    missing = [k for k in needed if k not in features]
    if need_camera and not camera_keys(features):
        missing.append(OBS_IMAGES_PREFIX + "<camera>")
    if missing:
        raise DatasetError(
            f"dataset {where} lacks feature(s) {missing} that the model needs; it has {sorted(features)}. "
            "Record state and actions as 'observation.state' and 'action' and images as 'observation.images.<camera>'."
        )


def uint8_image(chw) -> np.ndarray:
    """A LeRobot image sample, (3, H, W) float in [0, 1] (torch or numpy), as (H, W, 3) uint8."""
    return (np.clip(np.asarray(chw).transpose(1, 2, 0), 0, 1) * 255).round().astype(np.uint8)


class DemoDataset:
    """Training samples from a LeRobot dataset: images, state, action chunks (K, D), task text.

    Each sample is LeRobot's own: images as float32 (3, H, W) in [0, 1], `observation.state`
    (S,), `action` (K, D) with `action_is_pad` (K,) marking steps past the episode's end, and
    `task` (str), plus any extra per-frame fields the dataset has (e.g. `subtask`).
    """

    def __init__(self, lerobot_dataset, chunk_size: int):
        self.lerobot = lerobot_dataset
        self.chunk_size = chunk_size
        meta = lerobot_dataset.meta
        self.features: dict[str, Any] = dict(meta.features)
        self.cameras = [k[len(OBS_IMAGES_PREFIX) :] for k in camera_keys(self.features)]
        self.state_dim = int(self.features[OBS_STATE]["shape"][0])
        self.action_dim = int(self.features[ACTION]["shape"][0])
        self.fps = int(meta.fps)
        self.robot_type = meta.robot_type

    # --- metadata ---------------------------------------------------------------------------
    @property
    def num_episodes(self) -> int:
        return self.lerobot.num_episodes

    @property
    def num_frames(self) -> int:
        return self.lerobot.num_frames

    @property
    def tasks(self) -> list[str]:
        return list(self.lerobot.meta.tasks.index)

    @property
    def stats(self) -> dict[str, dict[str, np.ndarray]]:
        """The dataset's own normalization statistics (mean, std, min, max, q01..q99) per feature."""
        return {
            key: {name: np.asarray(value) for name, value in stat.items()}
            for key, stat in self.lerobot.meta.stats.items()
            if key in (OBS_STATE, *PRIVILEGED, ACTION) or key.startswith(OBS_IMAGES_PREFIX)
        }

    def feature_dim(self, key: str) -> int:
        """The length of a 1-D feature such as `observation.state`."""
        if key not in self.features:
            raise DatasetError(f"the dataset has no feature {key!r}; it has {sorted(self.features)}")
        return int(np.prod(self.features[key]["shape"]))

    def image_shape(self, camera: str) -> tuple[int, int, int]:
        """(H, W, C) of a camera as stored."""
        return tuple(self.features[OBS_IMAGES_PREFIX + camera]["shape"])

    # --- samples ----------------------------------------------------------------------------
    def __len__(self) -> int:
        return len(self.lerobot)

    def __getitem__(self, index: int) -> dict[str, Any]:
        return self.lerobot[index]

    def recording(self, cameras: list[str]) -> tuple[np.ndarray, dict[str, np.ndarray], np.ndarray]:
        """Every frame in order: `observation.state` (N, S), each camera's images (N, H, W, 3) uint8 and the
        episode index (N,). For calibration recordings (`vla arm-mask --dataset`), not for training."""
        missing = [c for c in cameras if c not in self.cameras]
        if missing:
            raise DatasetError(f"the dataset lacks the cameras {missing}; it has {self.cameras}")
        states, episodes, frames = [], [], {c: [] for c in cameras}
        for i in range(len(self)):
            item = self.lerobot[i]
            states.append(np.asarray(item[OBS_STATE], dtype=np.float32))
            episodes.append(int(item["episode_index"]))
            for c in cameras:
                frames[c].append(uint8_image(item[OBS_IMAGES_PREFIX + c]))
        return np.stack(states), {c: np.stack(f) for c, f in frames.items()}, np.asarray(episodes)

    def loader(self, batch_size: int = 32, shuffle: bool = True, num_workers: int = 0, seed: int = 0):
        """A torch DataLoader over this dataset; strings are collated into lists."""
        # deferred: vla.data stays torch-free for the ROS recorder node (vla.data.sync)
        import torch

        generator = torch.Generator().manual_seed(seed)
        return torch.utils.data.DataLoader(
            self.lerobot, batch_size=batch_size, shuffle=shuffle, num_workers=num_workers,
            generator=generator, drop_last=False, persistent_workers=num_workers > 0,
        )


def open_dataset(
    source: str | Path,
    chunk_size: int = 1,
    episodes: list[int] | None = None,
    repo_id: str | None = None,
    video_backend: str = DEFAULT_VIDEO_BACKEND,
    required: tuple[str, ...] = (OBS_STATE, ACTION),
    need_camera: bool = True,
) -> DemoDataset:
    """Open a local LeRobot v3.0 dataset directory, or a hub repo id (needs network).

    `chunk_size` K makes `action` a (K, D) chunk starting at the sample's frame, via LeRobot's
    delta timestamps; steps past the end of an episode are padded and flagged in `action_is_pad`.
    """
    # deferred: lerobot is heavy and optional (train extra); vla.data is imported without it
    from lerobot.datasets.lerobot_dataset import LeRobotDataset, LeRobotDatasetMetadata

    quiet_datasets()
    if chunk_size < 1:
        raise DatasetError(f"chunk_size={chunk_size}; expected at least 1")
    path = Path(source)
    if path.exists() or str(source).startswith((".", "/", "~")):
        info = check_local_dataset(path)
        root, repo_id = path, repo_id or f"local/{path.name}"
        features, fps = info["features"], info["fps"]
    else:  # a hub repo id such as lerobot/svla_so101_pickplace
        root, repo_id = None, str(source)
        meta = LeRobotDatasetMetadata(repo_id)
        features, fps = meta.features, meta.fps
    require_features(features, list(required), str(source), need_camera)
    delta = {ACTION: [i / fps for i in range(chunk_size)]}
    logging.getLogger("lerobot").setLevel(logging.WARNING)
    ds = LeRobotDataset(repo_id, root=root, episodes=episodes, delta_timestamps=delta, video_backend=video_backend)
    return DemoDataset(ds, chunk_size)

