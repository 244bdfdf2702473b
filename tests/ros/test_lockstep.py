"""Lockstep does not depend on when /clock arrives (issue 19): the test plays the lockstep sim, tick by
tick, and sends /clock late at the ticks where a chunk arrives, as a busy machine does. The commands
must be exactly those of an undisturbed run: no tick held by the watchdog."""

import json
import time

import numpy as np
import pytest
from rclpy.qos import qos_profile_sensor_data
from rosgraph_msgs.msg import Clock
from sensor_msgs.msg import Image, JointState
from std_msgs.msg import String
from trajectory_msgs.msg import JointTrajectory

from tests.helpers import ServerThread
from tests.ros.helpers import ROBOT, GentlePolicy, Recorder, rclpy_latched, sim_graph
from tests.ros.launch_graph import wait_for

pytestmark = pytest.mark.ros
TICKS = 20
PERIOD_NS = round(1e9 / ROBOT.control_rate_hz)
CHUNK = GentlePolicy.metadata["n_action_steps"]
# The chunk's last action comes (CHUNK - 1) periods after it: 0.4 s, under this timeout; seen with a
# /clock one tick late at the chunk's arrival it looked 0.5 s old and the node held.
INFERENCE_TIMEOUT_S = (CHUNK - 0.5) / ROBOT.control_rate_hz


def image_msg(t) -> Image:
    msg = Image(height=64, width=64, encoding="rgb8", step=64 * 3, data=bytes(64 * 64 * 3))
    msg.header.stamp = t
    return msg


def stamp(ns: int):
    msg = Clock()
    msg.clock.sec, msg.clock.nanosec = divmod(ns, 1_000_000_000)
    return msg.clock


def test_lockstep_commands_do_not_depend_on_when_clock_arrives(ros):
    node, tmp, domain = ros
    server = ServerThread(GentlePolicy(), "tcp://127.0.0.1:0")
    graph = sim_graph(tmp, domain, server=server.address, lockstep="true", use_sim_time="true",
                   refill_threshold="0", blend="0")
    clock_pub = node.create_publisher(Clock, "/clock", 10)
    joints_pub = node.create_publisher(JointState, ROBOT.controller.state_topic, 10)
    image_pubs = {cam.name: node.create_publisher(Image, cam.topic, qos_profile_sensor_data) for cam in ROBOT.cameras}
    instruction_pub = node.create_publisher(String, "/vla/instruction", rclpy_latched(1))
    commands = Recorder(node, JointTrajectory, ROBOT.controller.command_topic)
    status = Recorder(node, String, "/policy/status")
    state = np.asarray(ROBOT.home, dtype=np.float64)
    sent = []
    try:
        argv = graph.commands()["policy"] + ["-p", f"inference_timeout_s:={INFERENCE_TIMEOUT_S}"]
        graph.start_one("policy", argv)
        instruction_pub.publish(String(data="touch the red cube"))
        start_ns = 1_000_000_000
        clock_pub.publish(Clock(clock=stamp(start_ns)))
        for k in range(TICKS):
            t = stamp(start_ns + k * PERIOD_NS)
            late = k % CHUNK == 0  # the tick that asks for a chunk: its /clock comes after its inputs
            if not late:
                clock_pub.publish(Clock(clock=t))
                time.sleep(0.2)  # lets /clock land first (a slower landing only makes it late too)
            msg = JointState(name=list(ROBOT.joint_names), position=[float(v) for v in state])
            msg.header.stamp = t
            answered = lambda t=t: any(c.header.stamp == t for c in commands.msgs)  # noqa: E731
            for _ in range(60):  # as the sim does: sent again until answered (the node may still be starting)
                for pub in image_pubs.values():
                    pub.publish(image_msg(t))
                joints_pub.publish(msg)
                if wait_for(answered, 1.0):
                    break
            assert answered(), graph.log("policy")[-3000:]
            if late:
                clock_pub.publish(Clock(clock=t))
            command = next(c for c in commands.msgs if c.header.stamp == t)
            state = np.asarray(command.points[0].positions, dtype=np.float64)
            sent.append(state)
    finally:
        graph.stop_all()
        server.close()
    # GentlePolicy: each chunk moves joint1 by 0.01 per action from the state it saw; held ticks repeat.
    expected = np.asarray(ROBOT.home)[None, :] + np.outer(0.01 * np.arange(1, TICKS + 1), np.eye(len(state))[0])
    np.testing.assert_allclose(np.array(sent), expected, atol=1e-6)
    ticks = [json.loads(s.data) for s in status.msgs]
    ticks = [s for s in ticks if s["publishing"]]
    assert len(ticks) == TICKS
    assert not any(s["holding"] for s in ticks), [s["reason"] for s in ticks if s["holding"]]
