"""MuJoCo sim node: the tabletop behind the same topics as a real ros2_control arm.

Publishes /joint_states and the robot config's camera topics, obeys the controller command
topic (JointTrajectory or Float64MultiArray), so a policy node cannot tell sim from robot.
Also publishes the episode's instruction (latched) and task success; ~/reset and the
/vla/sim/task topic ("task_id" or "task_id:seed") start a new episode.
"""

from __future__ import annotations

import os

import numpy as np
from rclpy.node import Node
from rclpy.qos import DurabilityPolicy, QoSProfile, qos_profile_sensor_data
from rosgraph_msgs.msg import Clock
from sensor_msgs.msg import Image, JointState
from std_msgs.msg import Bool, String
from std_srvs.srv import Trigger

from vla_ros.conversions import CONTROLLER_TYPES, command_to_array, command_type, default_command_topic, image_to_msg
from vla_ros.spin import spin

LATCHED = QoSProfile(depth=1, durability=DurabilityPolicy.TRANSIENT_LOCAL)


class SimNode(Node):
    def __init__(self):
        super().__init__("sim")
        os.environ.setdefault("MUJOCO_GL", "egl")
        from sim.env import TabletopEnv
        from vla.robot import load_robot_config

        self._Env = TabletopEnv
        self.declare_parameter("robot_config", "panda")
        self.declare_parameter("task", "touch")
        self.declare_parameter("seed", 0)
        self.declare_parameter("speed", 1.0)  # 1.0 = real time; 2.0 = twice as fast
        self.declare_parameter("publish_clock", False)
        self.declare_parameter("controller_type", "trajectory")
        self.declare_parameter("command_topic", "")
        self.declare_parameter("image_size", 0)  # 0: the robot config's camera sizes
        # The scripted expert as a teleoperator: it publishes its actions on the command topic.
        self.declare_parameter("expert", False)
        self.robot = load_robot_config(self.get_parameter("robot_config").value)
        self.controller_type = self.get_parameter("controller_type").value
        if self.controller_type not in CONTROLLER_TYPES:
            raise ValueError(f"controller_type {self.controller_type!r}; expected one of {CONTROLLER_TYPES}")
        speed = float(self.get_parameter("speed").value)
        if not 0.05 <= speed <= 100:
            raise ValueError(f"speed={speed}; expected 0.05..100")
        self.names = self.robot.joint_names
        self.period = 1.0 / self.robot.control_rate_hz
        topic = self.get_parameter("command_topic").value or default_command_topic(
            self.controller_type, self.robot.controller.command_topic)
        self.create_subscription(command_type(self.controller_type), topic, self._on_command, 10)
        self.expert = None
        if self.get_parameter("expert").value:
            self.expert_pub = self.create_publisher(command_type(self.controller_type), topic, 10)
        self.create_subscription(String, "/vla/sim/task", self._on_task, 10)
        self.joint_pub = self.create_publisher(JointState, self.robot.controller.state_topic, 10)
        self.image_pubs = {c.name: self.create_publisher(Image, c.topic, qos_profile_sensor_data)
                           for c in self.robot.cameras}
        self.instruction_pub = self.create_publisher(String, "/vla/instruction", LATCHED)
        self.success_pub = self.create_publisher(Bool, "/vla/task_success", LATCHED)
        publish_clock = self.get_parameter("publish_clock").value
        self.clock_pub = self.create_publisher(Clock, "/clock", 10) if publish_clock else None
        self.create_service(Trigger, "~/reset", self._on_reset)
        self.commands_rejected = 0
        self.sim_time = 0.0
        self.env = None
        self._start(self.get_parameter("task").value, int(self.get_parameter("seed").value))
        self.timer = self.create_timer(self.period / speed, self._tick)

    def _start(self, task: str, seed: int) -> None:
        size = int(self.get_parameter("image_size").value) or None
        if self.env is None or self.env.spec_task.id != task:
            if self.env is not None:
                self.env.close()
            self.env = self._Env(task=task, robot=self.robot, image_size=size)
        self.obs, self.info = self.env.reset(seed=seed)
        self.seed, self.steps = seed, 0
        if self.get_parameter("expert").value:
            from sim.experts import ScriptedExpert

            self.expert = ScriptedExpert(self.env)
            self.expert.reset()
        self.target = self.obs["observation.state"].astype(np.float64)
        self.instruction_pub.publish(String(data=self.info["task"]))
        self.succeeded = False
        self.success_pub.publish(Bool(data=False))
        self.get_logger().info(f"episode: task={task} seed={seed}: {self.info['task']!r}")

    def _on_command(self, msg) -> None:
        try:
            target = command_to_array(msg, self.names)
            if not np.all(np.isfinite(target)):
                raise ValueError("non-finite target")
        except ValueError as exc:
            self.commands_rejected += 1
            self.get_logger().warning(f"command ignored: {exc}")
            return
        self.target = target

    def _on_task(self, msg: String) -> None:
        task, _, seed = msg.data.partition(":")
        try:
            self._start(task.strip(), int(seed) if seed else self.seed + 1)
        except ValueError as exc:
            self.get_logger().error(str(exc))

    def _on_reset(self, request, response):
        self._start(self.env.spec_task.id, self.seed + 1)
        response.success, response.message = True, self.info["task"]
        return response

    def _tick(self) -> None:
        if self.expert is not None:
            from vla_ros.conversions import command_msg

            action = self.expert.predict_chunk(self.obs)[0]
            self.expert_pub.publish(command_msg(self.controller_type, self.names, action, self.period))
            self.target = action.astype(np.float64)
        self.obs, _, _, _, self.info = self.env.step(self.target)
        self.steps += 1
        self.sim_time += self.period
        stamp = self.get_clock().now().to_msg()
        if self.clock_pub is not None:
            clock = Clock()
            clock.clock.sec, clock.clock.nanosec = int(self.sim_time), int((self.sim_time % 1) * 1e9)
            self.clock_pub.publish(clock)
            stamp = clock.clock
        state = JointState(name=list(self.names), position=[float(v) for v in self.obs["observation.state"]])
        state.header.stamp = stamp
        self.joint_pub.publish(state)
        for cam, pub in self.image_pubs.items():
            pub.publish(image_to_msg(self.obs[f"observation.images.{cam}"], stamp, cam))
        if self.info["success"] != self.succeeded:
            self.succeeded = bool(self.info["success"])
            self.success_pub.publish(Bool(data=self.succeeded))


def main(args=None):
    spin(SimNode, args)


if __name__ == "__main__":
    main()
