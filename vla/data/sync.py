"""Timestamped robot streams -> frames at the dataset rate, then LeRobot episodes.

Shared by the ROS 2 recorder node and the rosbag2 converter. For each frame time t (a grid
at `fps` over the episode), every stream contributes its sample nearest to t; a frame for
which some stream has nothing within `tolerance_s` is dropped and counted against that
stream. State is what the arm measured (/joint_states); action is what it was commanded (the
controller's command topic); both in the robot config's joint order.
"""

from __future__ import annotations

import bisect
from collections import Counter
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np

from vla.data.dataset import DEFAULT_VIDEO_BACKEND, quiet_datasets
from vla.robot import RobotConfig
from vla.types import ACTION, OBS_STATE, TASK, image_key

STATE, COMMAND = "joint_states", "command"


@dataclass
class Streams:
    """Samples by stream name: 'joint_states', 'command' and 'image <camera>'; times in seconds."""

    times: dict[str, list[float]] = field(default_factory=dict)
    values: dict[str, list[Any]] = field(default_factory=dict)

    def add(self, stream: str, t: float, value: Any) -> None:
        times = self.times.setdefault(stream, [])
        values = self.values.setdefault(stream, [])
        if times and t < times[-1]:  # out of order (rare): keep the lists sorted
            i = bisect.bisect(times, t)
            times.insert(i, t)
            values.insert(i, value)
        else:
            times.append(t)
            values.append(value)

    def nearest(self, stream: str, t: float, tolerance: float) -> Any | None:
        times = self.times.get(stream, [])
        i = bisect.bisect_left(times, t)
        best = min((j for j in (i - 1, i) if 0 <= j < len(times)), key=lambda j: abs(times[j] - t), default=None)
        if best is None or abs(times[best] - t) > tolerance:
            return None
        return self.values[stream][best]

    def span(self, streams: list[str]) -> tuple[float, float] | None:
        """The time range all streams cover."""
        if any(not self.times.get(s) for s in streams):
            return None
        return max(self.times[s][0] for s in streams), min(self.times[s][-1] for s in streams)


def required_streams(robot: RobotConfig) -> list[str]:
    return [STATE, COMMAND] + [f"image {c.name}" for c in robot.cameras]


def synchronize(streams: Streams, robot: RobotConfig, fps: float, tolerance_s: float, task: str
                ) -> tuple[list[dict[str, Any]], Counter]:
    """Frames at `fps` (nearest sample within tolerance) and how many were dropped, by stream."""
    needed = required_streams(robot)
    missing = [s for s in needed if not streams.times.get(s)]
    if missing:
        raise ValueError(f"no samples on {missing}; every frame needs {needed}")
    start, end = streams.span(needed)
    if end <= start:
        raise ValueError(f"the streams {needed} never overlap in time; they cannot be synchronized")
    frames, dropped = [], Counter()
    for t in np.arange(start, end + 1e-9, 1.0 / fps):
        sample = {s: streams.nearest(s, float(t), tolerance_s) for s in needed}
        lacking = [s for s, v in sample.items() if v is None]
        if lacking:
            dropped.update(lacking)
            continue
        frame = {image_key(c.name): sample[f"image {c.name}"] for c in robot.cameras}
        frame[OBS_STATE] = np.asarray(sample[STATE], dtype=np.float32)
        frame[ACTION] = np.asarray(sample[COMMAND], dtype=np.float32)
        frame[TASK] = task
        frames.append(frame)
    return frames, dropped


class EpisodeWriter:
    """A LeRobot v3.0 dataset fed whole episodes; features from the robot config and the images seen."""

    def __init__(self, root: str | Path, robot: RobotConfig, fps: int, repo_id: str | None = None,
                 use_videos: bool = True):
        self.root, self.robot, self.fps = Path(root), robot, int(fps)
        self.repo_id = repo_id or f"local/{self.root.name}"
        self.use_videos = use_videos
        self.dataset = None

    def _create(self, frame: dict[str, Any]) -> None:
        # deferred: lerobot is heavy and optional; the ROS recorder node imports this module at start-up
        from lerobot.datasets.lerobot_dataset import LeRobotDataset

        quiet_datasets()
        names = self.robot.joint_names
        features = {image_key(c.name): {"dtype": "video" if self.use_videos else "image",
                                        "shape": tuple(frame[image_key(c.name)].shape),
                                        "names": ["height", "width", "channels"]} for c in self.robot.cameras}
        features[OBS_STATE] = {"dtype": "float32", "shape": (len(names),), "names": names}
        features[ACTION] = {"dtype": "float32", "shape": (len(names),), "names": names}
        if self.root.exists() and (self.root / "meta" / "info.json").is_file():
            self.dataset = LeRobotDataset.resume(self.repo_id, root=self.root, video_backend=DEFAULT_VIDEO_BACKEND)
        else:
            self.dataset = LeRobotDataset.create(self.repo_id, fps=self.fps, features=features, root=self.root,
                                                 robot_type=self.robot.name, use_videos=self.use_videos,
                                                 video_backend=DEFAULT_VIDEO_BACKEND, metadata_buffer_size=1)

    def write(self, frames: list[dict[str, Any]], finalize: bool = False) -> int:
        """Save one episode. With `finalize`, the dataset is closed after it, so that even a killed
        process leaves every saved episode loadable (the next write resumes the dataset)."""
        if not frames:
            return 0
        if self.dataset is None:
            self._create(frames[0])
        for frame in frames:
            self.dataset.add_frame(frame)
        self.dataset.save_episode()
        if finalize:
            self.close()
        return len(frames)

    def close(self) -> None:
        if self.dataset is not None:
            self.dataset.finalize()
            self.dataset = None
