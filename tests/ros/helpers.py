"""Helpers shared by the ROS 2 tests: the robot, test policies, a topic recorder, a fake arm and the
sim bring-up graph. The rclpy set-up itself is the `ros` fixture in conftest.py."""

from __future__ import annotations

import time

import numpy as np
from rclpy.qos import DurabilityPolicy, QoSProfile
from sensor_msgs.msg import Image, JointState
from std_msgs.msg import String
from trajectory_msgs.msg import JointTrajectory

from tests.helpers import REPO
from tests.ros.launch_graph import LaunchGraph, ros_env
from vla.robot import load_robot_config

ROBOT = load_robot_config("panda")
HOME = ROBOT.home_array.astype(np.float64)
STEP = ROBOT.max_velocity.astype(np.float64) / ROBOT.control_rate_hz  # the most a joint may move in a tick
ATOL = 1e-5  # commands travel as float32 actions


def rclpy_latched(depth: int = 5) -> QoSProfile:
    """Transient local: a subscriber that joins late still gets the last `depth` messages."""
    return QoSProfile(depth=depth, durability=DurabilityPolicy.TRANSIENT_LOCAL)


LATCHED = rclpy_latched(1)


class GentlePolicy:
    """A numpy policy that moves joint1 slowly from the observed state; optionally corrupts chunks."""

    metadata = {"name": "gentle", "cameras": ["scene", "wrist"], "state_dim": 8, "action_dim": 8,
                "chunk_size": 5, "n_action_steps": 5, "fps": 10}

    def __init__(self, corrupt: bool = False):
        self.corrupt = corrupt
        self.calls = 0

    def reset(self):
        pass

    def predict_chunk(self, obs):
        self.calls += 1
        state = np.asarray(obs["observation.state"], dtype=np.float32)
        chunk = np.stack([state + np.r_[0.01 * k, np.zeros(7)] for k in range(1, 6)]).astype(np.float32)
        if self.corrupt and self.calls % 3 == 0:
            chunk[:, 5] = np.nan
        if self.corrupt and self.calls % 3 == 1:
            chunk[1:, 3] = 3.0  # far outside joint4's range
        return chunk


class Recorder:
    """Every message on `topic`, with the monotonic time it arrived."""

    def __init__(self, node, msg_type, topic, qos=50):
        self.msgs, self.times = [], []
        node.create_subscription(msg_type, topic, self._on, qos)

    def _on(self, msg):
        self.msgs.append(msg)
        self.times.append(time.monotonic())


def sim_graph(tmp, domain, **overrides) -> LaunchGraph:
    """launch/sim_bringup.launch.xml with these launch arguments."""
    return LaunchGraph(REPO / "launch" / "sim_bringup.launch.xml", overrides, tmp, ros_env(tmp, domain))


def faulty(kind: str, q: np.ndarray) -> tuple[list[str], list[float]]:
    """What a broken driver reports instead of `q`."""
    names, q = list(ROBOT.joint_names), q.copy()
    if kind == "nan":
        q[2] = np.nan
    elif kind == "inf":
        q[5] = -np.inf
    elif kind == "out_of_limits":
        q[3] = 1.0  # joint4's limits are [-3.07, -0.07]
    elif kind == "missing_joint":
        del names[2]
        q = np.delete(q, 2)
    return names, [float(v) for v in q]


class FakeArm:
    """An ideal arm on the test's node: reports its state and camera images at the control rate and
    goes to each command it receives. Commands that are bad are counted, never followed. Set `fault`
    to one of faulty()'s kinds to report a broken state."""

    def __init__(self, node):
        self.node, self.q, self.fault, self.joints_silent = node, HOME.copy(), None, False
        self.commands: list[np.ndarray] = []
        self.bad: list[str] = []
        self.joints = node.create_publisher(JointState, ROBOT.controller.state_topic, 10)
        self.cameras = [node.create_publisher(Image, c.topic, 10) for c in ROBOT.cameras]
        self.instruction = node.create_publisher(String, "/vla/instruction", LATCHED)
        self.instruction.publish(String(data="touch the red cube"))
        self.sub = node.create_subscription(JointTrajectory, ROBOT.controller.command_topic, self._on_command, 100)
        self.image = Image(height=ROBOT.cameras[0].height, width=ROBOT.cameras[0].width, encoding="rgb8")
        self.image.step = self.image.width * 3
        self.image.data = bytes(self.image.height * self.image.step)
        self.timer = node.create_timer(1.0 / ROBOT.control_rate_hz, self._tick)

    def _tick(self):
        names, positions = faulty(self.fault, self.q) if self.fault else (ROBOT.joint_names, list(self.q))
        if not self.joints_silent:  # a driver that stopped reporting (the cameras go on)
            self.joints.publish(JointState(name=names, position=[float(v) for v in positions]))
        for pub in self.cameras:
            pub.publish(self.image)

    def _on_command(self, msg):
        index = {n: i for i, n in enumerate(msg.joint_names)}
        q = np.array([msg.points[0].positions[index[n]] for n in ROBOT.joint_names])
        self.commands.append(q)
        if not np.all(np.isfinite(q)):
            self.bad.append(f"non-finite command {q}")
        elif np.any(q < ROBOT.lower - ATOL) or np.any(q > ROBOT.upper + ATOL):
            self.bad.append(f"command outside the limits {q}")
        elif np.any(np.abs(q - self.q) > STEP + ATOL):
            self.bad.append(f"step {np.abs(q - self.q)} beyond {STEP}")
        else:
            self.q = q

    def close(self):
        self.node.destroy_timer(self.timer)
        self.node.destroy_subscription(self.sub)
        for pub in (self.joints, self.instruction, *self.cameras):
            self.node.destroy_publisher(pub)
