"""`vla dataset from-rosbag`: rosbag2 recordings (sqlite3 or MCAP) -> a LeRobot v3.0 dataset.

Read with the pure-Python `rosbags` library: no ROS installation is needed. Topics come from
the robot config: its cameras (sensor_msgs/Image or CompressedImage), its state topic
(sensor_msgs/JointState: the state) and its controller command topic (JointTrajectory or
Float64MultiArray: the action), plus an instruction topic (std_msgs/String) for the task.
Joint values are reordered into the robot config's order whatever order the messages use.
"""

from __future__ import annotations

import io
import time
from pathlib import Path
from typing import Any

import numpy as np
from PIL import Image

from vla.data.sync import COMMAND, STATE, EpisodeWriter, Streams, synchronize
from vla.robot import RobotConfig

IMAGE_TYPES = ("sensor_msgs/msg/Image", "sensor_msgs/msg/CompressedImage")
COMMAND_TYPES = ("trajectory_msgs/msg/JointTrajectory", "std_msgs/msg/Float64MultiArray")


def _stamp(msg, fallback_ns: int) -> float:
    header = getattr(msg, "header", None)
    if header is not None and (header.stamp.sec or header.stamp.nanosec):
        return header.stamp.sec + header.stamp.nanosec * 1e-9
    return fallback_ns * 1e-9


def _image(msg, msgtype: str) -> np.ndarray:
    if msgtype.endswith("CompressedImage"):
        return np.asarray(Image.open(io.BytesIO(bytes(msg.data))).convert("RGB"))
    if msg.encoding not in ("rgb8", "bgr8"):
        raise ValueError(f"image encoding {msg.encoding!r}; expected rgb8 or bgr8")
    rows = np.asarray(msg.data, dtype=np.uint8).reshape(msg.height, msg.step)[:, : msg.width * 3]
    image = rows.reshape(msg.height, msg.width, 3)
    return np.ascontiguousarray(image[..., ::-1] if msg.encoding == "bgr8" else image)


def _ordered(names, values, wanted: list[str], topic: str) -> np.ndarray:
    index = {n: i for i, n in enumerate(names)}
    missing = [n for n in wanted if n not in index]
    if missing:
        raise ValueError(f"{topic}: joints {missing} of the robot config are absent; the messages name {list(names)}")
    return np.array([values[index[n]] for n in wanted], dtype=np.float32)


def _command(msg, msgtype: str, names: list[str], topic: str) -> np.ndarray | None:
    if msgtype.endswith("JointTrajectory"):
        if not len(msg.points):
            return None
        return _ordered(list(msg.joint_names), list(msg.points[0].positions), names, topic)
    data = np.asarray(msg.data, dtype=np.float32)
    if data.shape != (len(names),):
        raise ValueError(f"{topic}: Float64MultiArray of {data.shape[0]} values; expected {len(names)} ({names})")
    return data


def _split(times: list[float], rule: str, instructions: list[tuple[float, str]]) -> list[float]:
    """Episode boundaries (start times) from the rule: bag | instruction | gap:SECONDS."""
    if rule == "bag":
        return [times[0]]
    if rule == "instruction":
        return [t for t, _ in instructions] or [times[0]]
    if rule.startswith("gap:"):
        gap = float(rule.split(":", 1)[1])
        return [times[0]] + [b for a, b in zip(times, times[1:], strict=False) if b - a > gap]
    raise ValueError(f"episode split {rule!r}; expected bag, instruction or gap:SECONDS")


def convert_rosbag(bag: str | Path, robot: RobotConfig, out: str | Path, episode_split: str = "auto",
                   task: str | None = None, fps: float | None = None, tolerance_s: float = 0.05,
                   instruction_topic: str = "/vla/instruction", use_videos: bool = True) -> dict[str, Any]:
    # deferred: rosbags is the optional ros extra, needed only to read a bag
    from rosbags.highlevel import AnyReader
    from rosbags.typesys import Stores, get_typestore

    bag = Path(bag)
    if not bag.exists():
        raise FileNotFoundError(f"rosbag {bag} not found")
    fps = fps or robot.control_rate_hz
    names = robot.joint_names
    wanted = {c.topic: (f"image {c.name}", IMAGE_TYPES) for c in robot.cameras}
    wanted[robot.controller.state_topic] = (STATE, ("sensor_msgs/msg/JointState",))
    wanted[robot.controller.command_topic] = (COMMAND, COMMAND_TYPES)
    streams, instructions, count = Streams(), [], 0
    start = time.perf_counter()
    with AnyReader([bag], default_typestore=get_typestore(Stores.ROS2_KILTED)) as reader:
        present = {c.topic: c.msgtype for c in reader.connections}
        problems = [f"{topic} ({' or '.join(types)})" for topic, (_, types) in wanted.items()
                    if present.get(topic) not in types]
        if problems:
            raise ValueError(f"bag {bag} lacks topic(s) {problems}; it has {present}")
        topics = set(wanted) | ({instruction_topic} if instruction_topic in present else set())
        for conn, t_ns, raw in reader.messages(connections=[c for c in reader.connections if c.topic in topics]):
            msg = reader.deserialize(raw, conn.msgtype)
            count += 1
            if conn.topic == instruction_topic:
                instructions.append((t_ns * 1e-9, msg.data))
                continue
            stream, _ = wanted[conn.topic]
            t = _stamp(msg, t_ns)
            if stream == STATE:
                streams.add(stream, t, _ordered(list(msg.name), list(msg.position), names, conn.topic))
            elif stream == COMMAND:
                value = _command(msg, conn.msgtype, names, conn.topic)
                if value is not None:
                    streams.add(stream, t, value)
            else:
                streams.add(stream, t, _image(msg, conn.msgtype))
    if episode_split == "auto":
        episode_split = "instruction" if instructions else "gap:1.0"
    if not instructions and not task:
        raise ValueError(f"bag {bag} has no {instruction_topic} messages; pass --task to name the task")
    bounds = _split(streams.times.get(COMMAND, [0.0]), episode_split, instructions) + [float("inf")]
    writer = EpisodeWriter(out, robot, int(fps), use_videos=use_videos)
    frames_total, dropped_total, episodes = 0, {}, 0
    try:
        for lo, hi in zip(bounds, bounds[1:], strict=False):
            part = Streams()
            for stream, times in streams.times.items():
                for t, v in zip(times, streams.values[stream], strict=True):
                    if lo - tolerance_s <= t < hi:
                        part.add(stream, t, v)
            episode_task = next((text for t, text in reversed(instructions) if t <= lo + tolerance_s), task)
            try:
                frames, dropped = synchronize(part, robot, fps, tolerance_s, episode_task or task)
            except ValueError:
                continue  # a segment without every stream (e.g. before the first command)
            for k, v in dropped.items():
                dropped_total[k] = dropped_total.get(k, 0) + v
            if frames:
                frames_total += writer.write(frames)
                episodes += 1
    finally:
        writer.close()
    if episodes == 0:
        raise ValueError(f"no frame of {bag} could be synchronized within {tolerance_s} s; dropped: {dropped_total}")
    seconds = time.perf_counter() - start
    return {"bag": str(bag), "out": str(out), "episodes": episodes, "frames": frames_total,
            "dropped": dropped_total, "messages": count, "seconds": round(seconds, 2),
            "messages_per_s": round(count / seconds, 1), "episode_split": episode_split}
