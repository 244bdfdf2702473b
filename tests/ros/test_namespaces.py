"""Namespaces, the latched e-stop and parameter descriptors (issue 19), over real Fast DDS on loopback.

Two robots from sim_bringup.launch.xml, namespace:=robot1 and namespace:=robot2, run side by side
on one DDS domain, each with its own policy server: each policy node drives only its own sim, an
e-stop to one holds only that one, and nothing is published in the root namespace.
"""

import json
import sys

import numpy as np
import pytest
import rclpy
from rclpy.parameter import Parameter
from std_msgs.msg import Bool, String
from trajectory_msgs.msg import JointTrajectory

from tests.helpers import REPO, ServerThread
from tests.ros.helpers import HOME, LATCHED, ROBOT, FakeArm, GentlePolicy, Recorder
from tests.ros.launch_graph import PACKAGE_SRC, LaunchGraph, call_trigger, ros_env, wait_for

pytestmark = pytest.mark.ros
COMMAND = ROBOT.controller.command_topic.lstrip("/")


def _moving(recorder, start):
    """The commands since `start` change (the arm is driven)."""
    q = np.array([m.points[0].positions for m in recorder.msgs[start:]])
    return len(q) >= 5 and not np.allclose(q, q[0])


def _reason(status) -> str:
    return json.loads(status.msgs[-1].data)["reason"] if status.msgs else ""


def test_two_namespaced_robots_run_side_by_side_without_crosstalk(ros):
    node, tmp, domain = ros
    robots = ("robot1", "robot2")
    servers = {r: ServerThread(GentlePolicy(), "tcp://127.0.0.1:0") for r in robots}
    graphs = {r: LaunchGraph(REPO / "launch" / "sim_bringup.launch.xml",
                             {"namespace": r, "server": servers[r].address, "task": "touch", "seed": str(i)},
                             tmp / r, ros_env(tmp / r, domain)) for i, r in enumerate(robots)}
    commands = {r: Recorder(node, JointTrajectory, f"/{r}/{COMMAND}") for r in robots}
    status = {r: Recorder(node, String, f"/{r}/policy/status", qos=100) for r in robots}
    root = [Recorder(node, JointTrajectory, f"/{COMMAND}"), Recorder(node, String, "/policy/status"),
            Recorder(node, String, "/vla/instruction", qos=LATCHED)]
    estop = node.create_publisher(Bool, "/robot1/vla/estop", LATCHED)
    try:
        for r in robots:
            (tmp / r).mkdir(exist_ok=True)
            graphs[r].start(only=["sim", "policy"])
        for r in robots:
            assert wait_for(lambda r=r: _moving(commands[r], 0), 120), graphs[r].log("policy")[-2000:]
        # One publisher and one subscriber per robot topic: each policy node talks to its own sim only.
        for r in robots:
            topic = f"/{r}/{COMMAND}"  # discovery of the second subscriber can lag: wait for the graph
            assert wait_for(lambda t=topic: node.count_publishers(t) == 1 and node.count_subscribers(t) == 2, 60)
            assert node.count_publishers(f"/{r}/joint_states") == 1
        assert node.count_publishers(f"/{COMMAND}") == 0 and node.count_publishers("/joint_states") == 0
        estop.publish(Bool(data=True))  # robot1 only
        assert wait_for(lambda: "e-stop" in _reason(status["robot1"]), 20), graphs["robot1"].log("policy")[-2000:]
        held_from, moving_from = len(commands["robot1"].msgs), len(commands["robot2"].msgs)
        assert wait_for(lambda: _moving(commands["robot2"], moving_from), 30), "robot2 goes on"
        held = np.array([m.points[0].positions for m in commands["robot1"].msgs[held_from:]])
        assert len(held) >= 3 and np.allclose(held, held[0]), "robot1 holds"
        assert "e-stop" not in _reason(status["robot2"])
    finally:
        for r in robots:
            graphs[r].stop_all()
            servers[r].close()
        node.destroy_publisher(estop)
    assert all(servers[r].server.policy.calls > 0 for r in robots)
    assert [len(rec.msgs) for rec in root] == [0, 0, 0], "nothing in the root namespace"


def test_an_estop_sent_before_the_node_starts_holds_it_and_the_service_raises_it(ros):
    node, tmp, domain = ros
    server = ServerThread(GentlePolicy(), "tcp://127.0.0.1:0")
    arm = FakeArm(node)
    status = Recorder(node, String, "/policy/status", qos=100)
    estop = node.create_publisher(Bool, "/vla/estop", LATCHED)
    estop.publish(Bool(data=True))  # before any policy node exists: kept for it by transient local durability
    graph = LaunchGraph(REPO / "launch" / "sim_bringup.launch.xml", {"server": server.address}, tmp,
                        ros_env(tmp, domain))
    try:
        graph.start(only=["policy"])
        assert wait_for(lambda: sum("e-stop engaged" in json.loads(m.data)["reason"] for m in status.msgs) >= 10,
                        120), graph.log("policy")[-2000:]
        assert np.allclose(arm.q, HOME) and all(np.allclose(q, HOME) for q in arm.commands), "the arm holds"
        start = arm.q[0]
        estop.publish(Bool(data=False))
        assert wait_for(lambda: arm.q[0] > start + 0.03, 60), graph.log("policy")[-2000:]
        assert "e-stop cleared on vla/estop" in graph.log("policy")  # both edges are logged
        reply = call_trigger(node, "/policy/estop")
        assert reply.success and "vla/estop" in reply.message
        n = len(status.msgs)
        assert wait_for(lambda: sum("e-stop engaged" in json.loads(m.data)["reason"] for m in status.msgs[n:]) >= 5,
                        30)
        # A plain publisher (reliable, volatile: what `ros2 topic pub` uses) releases it too.
        volatile = node.create_publisher(Bool, "/vla/estop", 10)
        assert wait_for(lambda: node.count_subscribers("/vla/estop") >= 2, 30)
        start = arm.q[0]
        assert wait_for(lambda: volatile.publish(Bool(data=False)) or arm.q[0] > start + 0.03, 60), \
            graph.log("policy")[-2000:]
        assert graph.log("policy").count("e-stop cleared on vla/estop") == 2
        assert "incompatible QoS" not in graph.log("policy")
        node.destroy_publisher(volatile)
        # A best-effort publisher matches no subscription: the node says so.
        best_effort = node.create_publisher(Bool, "/vla/estop", rclpy.qos.qos_profile_sensor_data)
        assert wait_for(lambda: "incompatible QoS" in graph.log("policy"), 30), graph.log("policy")[-2000:]
        node.destroy_publisher(best_effort)
    finally:
        graph.stop_all()
        server.close()
        arm.close()
        node.destroy_publisher(estop)
    assert arm.bad == []


def test_parameters_are_described_and_those_fixed_at_start_up_are_read_only(ros):
    if str(PACKAGE_SRC) not in sys.path:
        sys.path.insert(0, str(PACKAGE_SRC))
    from vla_ros.parameters import StartupError
    from vla_ros.policy_node import PARAMETERS, PolicyNode

    context = rclpy.Context()
    rclpy.init(context=context, domain_id=ros[2])
    try:
        node = PolicyNode(context=context)
        descriptors = dict(zip(PARAMETERS, node.describe_parameters(list(PARAMETERS)), strict=True))
        assert all(len(d.description) > 10 for d in descriptors.values())
        assert {n for n, d in descriptors.items() if not d.read_only} == {"instruction", "dry_run"}
        refused = node.set_parameters([Parameter("controller_type", value="forward")])[0]
        assert not refused.successful and "read-only" in refused.reason
        assert node.set_parameters([Parameter("dry_run", value=True)])[0].successful
        node.destroy_node()
        with pytest.raises(StartupError, match="controller_type must be one of .* got 'trajectori'"):
            PolicyNode(context=context, parameter_overrides=[Parameter("controller_type", value="trajectori")])
    finally:
        rclpy.shutdown(context=context)
