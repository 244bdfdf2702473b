"""The ROS 2 publishers the benchmarks start in a child process, so that sending and receiving
do not share one interpreter: `python -m vla.cli.bench.ros_publishers arm|cameras ...` runs them.

`arm`: a 30 Hz arm with the robot config's cameras, /joint_states and commands (for `vla bench
ros-record`). `cameras`: two cameras stamped with the wall clock (for `vla bench serving`).
"""

from __future__ import annotations

import time

import numpy as np

from vla.robot import load_robot_config


def publish_arm(seconds: float, size: int, robot_name: str = "panda") -> None:
    """Publish the robot's cameras, joint states and commands at 30 Hz for `seconds`."""
    # deferred: ROS 2 (rclpy and its messages) is the optional ros extra; the module imports without it
    import rclpy
    from rclpy.qos import qos_profile_sensor_data
    from sensor_msgs.msg import Image, JointState
    from trajectory_msgs.msg import JointTrajectory, JointTrajectoryPoint

    robot = load_robot_config(robot_name)
    rclpy.init()
    node = rclpy.create_node("bench_arm")
    cams = [node.create_publisher(Image, c.topic, qos_profile_sensor_data) for c in robot.cameras]
    joint_states = node.create_publisher(JointState, robot.controller.state_topic, 10)
    command = node.create_publisher(JointTrajectory, robot.controller.command_topic, 10)
    data = np.random.default_rng(0).integers(0, 255, (size, size, 3), dtype=np.uint8).tobytes()
    q = [float(v) for v in robot.home_array]
    end = time.time() + seconds
    try:
        while time.time() < end:
            stamp = node.get_clock().now().to_msg()
            for pub in cams:
                image = Image(height=size, width=size, encoding="rgb8", step=size * 3, data=data)
                image.header.stamp = stamp
                pub.publish(image)
            state = JointState(name=robot.joint_names, position=q)
            state.header.stamp = stamp
            joint_states.publish(state)
            target = JointTrajectory(joint_names=robot.joint_names, points=[JointTrajectoryPoint(positions=q)])
            target.header.stamp = stamp
            command.publish(target)
            time.sleep(1 / 30)
    finally:
        node.destroy_node()
        rclpy.shutdown()


def publish_cameras(seconds: float, size: int, hz: float) -> None:
    """Publish two size x size cameras on /bench/cam0 and /bench/cam1 at `hz`, stamped with `time.time()`
    so that a receiver on the same machine can measure the latency."""
    # deferred: ROS 2 (rclpy and its messages) is the optional ros extra; the module imports without it
    import rclpy
    from rclpy.qos import qos_profile_sensor_data
    from sensor_msgs.msg import Image

    rclpy.init()
    node = rclpy.create_node("bench_camera")
    pubs = [node.create_publisher(Image, f"/bench/cam{i}", qos_profile_sensor_data) for i in range(2)]
    data = np.random.default_rng(0).integers(0, 255, (size, size, 3), dtype=np.uint8).tobytes()
    end = time.time() + seconds
    try:
        while time.time() < end:
            for pub in pubs:
                image = Image(height=size, width=size, encoding="rgb8", step=size * 3, data=data)
                t = time.time()
                image.header.stamp.sec = int(t)
                image.header.stamp.nanosec = int((t % 1) * 1e9)
                pub.publish(image)
            time.sleep(1 / hz)
    finally:
        node.destroy_node()
        rclpy.shutdown()
