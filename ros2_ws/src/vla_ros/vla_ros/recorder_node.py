"""Recorder node: demonstrations from a ROS 2 arm straight into a LeRobot v3.0 dataset.

Subscribes the robot config's cameras, /joint_states (the state), the controller command
topic (the action: what the arm was commanded, by a teleoperator or a policy) and the
instruction topic. ~/start, ~/stop and ~/discard (std_srvs/Trigger) bracket episodes. On stop
the streams are synchronized at the dataset fps (nearest sample within `tolerance_s`; frames
outside it are dropped and counted per stream) and the episode is written through LeRobot's
API, then the dataset is finalized, so an interruption never costs a finished episode.
"""

from __future__ import annotations

import json
import threading

from rclpy.node import Node
from rclpy.qos import DurabilityPolicy, QoSProfile, qos_profile_sensor_data
from sensor_msgs.msg import Image, JointState
from std_msgs.msg import String
from std_srvs.srv import Trigger

from vla.data.sync import COMMAND, STATE, EpisodeWriter, Streams, synchronize
from vla_ros.conversions import (
    CONTROLLER_TYPES,
    command_to_array,
    command_type,
    default_command_topic,
    joint_state_to_array,
    msg_to_image,
)
from vla_ros.parameters import (
    COMMAND_TOPIC,
    INSTRUCTION_TOPIC,
    ROBOT_CONFIG,
    Spec,
    StartupError,
    declare,
    relative,
    robot_config,
)
from vla_ros.spin import spin

LATCHED = QoSProfile(depth=1, durability=DurabilityPolicy.TRANSIENT_LOCAL)

# Each parameter's default is in the vla package's configs/ros/recorder_node.yaml (parameters.PARAMETER_DIR).
PARAMETERS: Spec = {
    **ROBOT_CONFIG,
    "out": (str, "dataset directory (required)", True),
    "repo_id": (str, "LeRobot repo id written into the dataset (empty: from the directory name)", True),
    "fps": (float, "dataset frame rate (0: the robot's control rate)", True),
    "tolerance_s": (float, "nearest-in-time tolerance for every stream, seconds", True),
    "task": (str, "task text used when no instruction is published", True),
    **INSTRUCTION_TOPIC,
    "controller_type": (str, f"command message type recorded as the action: one of {CONTROLLER_TYPES}", True),
    **COMMAND_TOPIC,
    "storage": (str, "how images are stored: video or images", True),
}


def _seconds(msg, node: Node) -> float:
    stamp = msg.header.stamp if hasattr(msg, "header") else None
    if stamp is not None and (stamp.sec or stamp.nanosec):
        return stamp.sec + stamp.nanosec * 1e-9
    return node.get_clock().now().nanoseconds * 1e-9


class RecorderNode(Node):
    def __init__(self):
        super().__init__("recorder")
        p = declare(self, PARAMETERS, "recorder_node")
        if not p["out"]:
            raise StartupError("parameter 'out' (the dataset directory) is required")
        if p["controller_type"] not in CONTROLLER_TYPES:
            raise StartupError(f"controller_type={p['controller_type']!r}; expected one of {CONTROLLER_TYPES}")
        if p["storage"] not in ("video", "images"):
            raise StartupError(f"storage={p['storage']!r}; expected video or images")
        self.robot = robot_config(p["robot_config"])
        self.names = self.robot.joint_names
        self.fps = p["fps"] or self.robot.control_rate_hz
        self.tolerance = float(p["tolerance_s"])
        self.task = p["task"]
        self.writer = EpisodeWriter(p["out"], self.robot, int(self.fps), p["repo_id"] or None,
                                    use_videos=p["storage"] == "video")
        self.lock = threading.Lock()
        self.streams: Streams | None = None
        self.stats = {"episodes": 0, "frames": 0, "dropped": {}, "discarded": 0, "warnings": 0}
        for cam in self.robot.cameras:
            self.create_subscription(Image, relative(cam.topic), lambda m, c=cam.name: self._on_image(c, m),
                                     qos_profile_sensor_data)
        self.create_subscription(JointState, relative(self.robot.controller.state_topic), self._on_joints, 50)
        topic = p["command_topic"] or relative(default_command_topic(p["controller_type"],
                                                                     self.robot.controller.command_topic))
        self.create_subscription(command_type(p["controller_type"]), topic, self._on_command, 50)
        self.create_subscription(String, p["instruction_topic"], self._on_instruction, LATCHED)
        self.create_service(Trigger, "~/start", self._on_start)
        self.create_service(Trigger, "~/stop", self._on_stop)
        self.create_service(Trigger, "~/discard", self._on_discard)
        self.status_pub = self.create_publisher(String, "~/status", 10)
        self.get_logger().info(f"recording to {p['out']} at {self.fps} Hz (commands from {topic})")

    def _add(self, stream: str, t: float, value) -> None:
        with self.lock:
            if self.streams is not None:
                self.streams.add(stream, t, value)

    def _warn(self, text: str) -> None:
        self.stats["warnings"] += 1
        self.get_logger().warning(text, throttle_duration_sec=5.0)

    def _on_image(self, camera: str, msg: Image) -> None:
        try:
            self._add(f"image {camera}", _seconds(msg, self), msg_to_image(msg))
        except ValueError as exc:
            self._warn(f"camera {camera}: {exc}")

    def _on_joints(self, msg: JointState) -> None:
        try:
            self._add(STATE, _seconds(msg, self), joint_state_to_array(msg, self.names))
        except ValueError as exc:
            self._warn(str(exc))

    def _on_command(self, msg) -> None:
        try:
            self._add(COMMAND, _seconds(msg, self), command_to_array(msg, self.names))
        except ValueError as exc:
            self._warn(f"command: {exc}")

    def _on_instruction(self, msg: String) -> None:
        self.task = msg.data

    def _on_start(self, request, response):
        with self.lock:
            self.streams = Streams()
        response.success, response.message = True, f"recording episode {self.stats['episodes']}"
        return response

    def _on_discard(self, request, response):
        with self.lock:
            self.streams = None
        self.stats["discarded"] += 1
        response.success, response.message = True, "episode discarded"
        return response

    def _on_stop(self, request, response):
        with self.lock:
            streams, self.streams = self.streams, None
        if streams is None:
            response.success, response.message = False, "not recording"
            return response
        if not self.task:
            response.success, response.message = False, "no task: publish an instruction or set the 'task' parameter"
            return response
        try:
            frames, dropped = synchronize(streams, self.robot, self.fps, self.tolerance, self.task)
            n = self.writer.write(frames, finalize=True)
        except ValueError as exc:
            response.success, response.message = False, f"episode not saved: {exc}"
            return response
        self.stats["episodes"] += 1
        self.stats["frames"] += n
        for k, v in dropped.items():
            self.stats["dropped"][k] = self.stats["dropped"].get(k, 0) + v
        self.status_pub.publish(String(data=json.dumps(self.stats)))
        response.success = n > 0
        response.message = json.dumps({"frames": n, "dropped": dict(dropped), "task": self.task})
        return response

    def close(self) -> None:
        self.writer.close()


def main(args=None):
    import lerobot.datasets.lerobot_dataset  # noqa: F401 - seconds of imports now, not inside the first ~/stop

    # An episode in progress is dropped on shutdown; every finished one is already finalized.
    spin(RecorderNode, args, before_shutdown=lambda node: node.close())


if __name__ == "__main__":
    main()
