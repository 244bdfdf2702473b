"""The benchmarks' child publishers (`python -m vla.cli.bench.ros_publishers`) publish what the benches read."""

import subprocess
import sys

import pytest
from rclpy.qos import qos_profile_sensor_data
from sensor_msgs.msg import Image, JointState
from trajectory_msgs.msg import JointTrajectory

from tests.helpers import REPO
from tests.ros.helpers import Recorder
from tests.ros.launch_graph import ros_env, wait_for
from vla.robot import load_robot_config

pytestmark = [pytest.mark.ros, pytest.mark.slow]  # benchmark tooling: child processes publishing for seconds


def _publish(tmp, domain, *args):
    return subprocess.Popen([sys.executable, "-m", "vla.cli.bench.ros_publishers", *args], cwd=REPO,
                            env=ros_env(tmp, domain), stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True)


def _finish(child):
    out, _ = child.communicate(timeout=60)
    assert child.returncode == 0, out


def test_cameras_publish_wall_clock_stamped_images(ros):
    node, tmp, domain = ros
    cams = [Recorder(node, Image, f"/bench/cam{i}", qos=qos_profile_sensor_data) for i in range(2)]
    child = _publish(tmp, domain, "cameras", "--seconds", "4", "--size", "8", "--hz", "30")
    try:
        assert wait_for(lambda: all(c.msgs for c in cams), 30), "no image on /bench/cam0 and /bench/cam1"
    finally:
        _finish(child)
    msg = cams[0].msgs[-1]
    assert (msg.height, msg.width, msg.encoding, len(msg.data)) == (8, 8, "rgb8", 8 * 8 * 3)
    assert msg.header.stamp.sec > 1_000_000_000  # wall clock, which the latency measurement needs


def test_arm_publishes_the_robot_configs_topics(ros):
    node, tmp, domain = ros
    robot = load_robot_config("panda")
    cams = [Recorder(node, Image, c.topic, qos=qos_profile_sensor_data) for c in robot.cameras]
    states = Recorder(node, JointState, robot.controller.state_topic)
    commands = Recorder(node, JointTrajectory, robot.controller.command_topic)
    child = _publish(tmp, domain, "arm", "--seconds", "4", "--size", "8")
    try:
        assert wait_for(lambda: all(r.msgs for r in (*cams, states, commands)), 30), "a topic stayed silent"
    finally:
        _finish(child)
    assert list(states.msgs[-1].name) == list(robot.joint_names)
    assert list(commands.msgs[-1].points[0].positions) == pytest.approx(robot.home_array.tolist())
