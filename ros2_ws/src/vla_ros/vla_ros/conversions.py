"""Message conversions with numpy only (no cv_bridge): images, joint states, controller commands."""

from __future__ import annotations

import numpy as np
from sensor_msgs.msg import Image, JointState
from std_msgs.msg import Float64MultiArray
from trajectory_msgs.msg import JointTrajectory, JointTrajectoryPoint

CONTROLLER_TYPES = ("trajectory", "forward")


def image_to_msg(image: np.ndarray, stamp, frame_id: str) -> Image:
    msg = Image()
    msg.header.stamp = stamp
    msg.header.frame_id = frame_id
    msg.height, msg.width = int(image.shape[0]), int(image.shape[1])
    msg.encoding = "rgb8"
    msg.step = msg.width * 3
    msg.data = np.ascontiguousarray(image, dtype=np.uint8).tobytes()
    return msg


def msg_to_image(msg: Image) -> np.ndarray:
    """rgb8 or bgr8 Image -> uint8 H x W x 3 (RGB)."""
    if msg.encoding not in ("rgb8", "bgr8"):
        raise ValueError(f"image encoding {msg.encoding!r}; expected rgb8 or bgr8")
    rows = np.frombuffer(bytes(msg.data), dtype=np.uint8).reshape(msg.height, msg.step)
    image = rows[:, : msg.width * 3].reshape(msg.height, msg.width, 3)
    return np.ascontiguousarray(image[..., ::-1] if msg.encoding == "bgr8" else image)


def joint_state_to_array(msg: JointState, names: list[str]) -> np.ndarray:
    """Positions in the robot config's order, whatever order the message carries names in."""
    if len(msg.position) != len(msg.name):
        raise ValueError(f"/joint_states has {len(msg.name)} names but {len(msg.position)} positions")
    index = {n: i for i, n in enumerate(msg.name)}
    missing = [n for n in names if n not in index]
    if missing:
        raise ValueError(f"/joint_states lacks joints {missing}; it has {list(msg.name)}")
    return np.array([msg.position[index[n]] for n in names], dtype=np.float32)


def command_msg(controller_type: str, names: list[str], action: np.ndarray, period_s: float, stamp=None):
    """A ros2_control command: one JointTrajectory point reached in one period, or forward positions.

    `stamp` (builtin_interfaces/Time) goes in the trajectory's header: a lockstep sim matches it with
    the observation the command answers. Without it the header stays zero ("start now")."""
    values = [float(v) for v in action]
    if controller_type == "trajectory":
        msg = JointTrajectory()
        msg.joint_names = list(names)
        if stamp is not None:
            msg.header.stamp = stamp
        point = JointTrajectoryPoint()
        point.positions = values
        point.time_from_start.sec = int(period_s)
        point.time_from_start.nanosec = int((period_s % 1) * 1e9)
        msg.points = [point]
        return msg
    if controller_type == "forward":
        return Float64MultiArray(data=values)
    raise ValueError(f"controller_type {controller_type!r}; expected one of {CONTROLLER_TYPES}")


def command_to_array(msg, names: list[str]) -> np.ndarray:
    """Inverse of `command_msg`, as a controller reads it."""
    if isinstance(msg, JointTrajectory):
        if not msg.points:
            raise ValueError("JointTrajectory without points")
        index = {n: i for i, n in enumerate(msg.joint_names)}
        missing = [n for n in names if n not in index]
        if missing:
            raise ValueError(f"JointTrajectory lacks joints {missing}")
        point = msg.points[0].positions
        return np.array([point[index[n]] for n in names], dtype=np.float64)
    data = np.asarray(msg.data, dtype=np.float64)
    if data.shape != (len(names),):
        raise ValueError(f"Float64MultiArray of {data.shape[0]} values; expected {len(names)} ({names})")
    return data


def command_type(controller_type: str):
    return JointTrajectory if controller_type == "trajectory" else Float64MultiArray


def default_command_topic(controller_type: str, robot_topic: str) -> str:
    """The robot config's topic for trajectories; forward_position_controller/commands otherwise."""
    return robot_topic if controller_type == "trajectory" else "forward_position_controller/commands"
