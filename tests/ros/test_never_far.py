"""Never far from the arm, over real rclpy and Fast DDS (issue 30): a hand-moved arm is approached from
where it is, within the gap bound and the velocity limits; the sim waits for its policy (or exits naming
what is missing); a policy node refuses another robot's server."""

import json
import time

import numpy as np
import pytest
from std_msgs.msg import String

from tests.helpers import ServerThread
from tests.ros.helpers import ATOL, HOME, ROBOT, STEP, FakeArm, GentlePolicy, Recorder, sim_graph
from tests.ros.launch_graph import wait_for

pytestmark = pytest.mark.ros
BOUND = ROBOT.max_command_gap.astype(np.float64)
FAR = HOME + np.r_[1.5, -0.9, 1.2, 0.8, -1.3, 0.6, 1.0, 0.0]


class MovableArm(FakeArm):
    """A FakeArm that someone can push to another pose. A command made before the policy node can have seen
    the push (stamped earlier than two control periods after it: one tick for the joint state to go out,
    one for the node to act on it) was made for the old pose and is in flight: it is not followed."""

    moved_at = 0.0

    def move_to(self, q):
        self.moved_at, self.q = self.node.get_clock().now().nanoseconds * 1e-9, np.asarray(q, dtype=np.float64)

    def _on_command(self, msg):
        made = msg.header.stamp.sec + msg.header.stamp.nanosec * 1e-9
        if made < self.moved_at + 2 / ROBOT.control_rate_hz:
            return
        super()._on_command(msg)


def test_a_hand_moved_arm_is_approached_from_where_it_is(ros):
    node, tmp, domain = ros
    server = ServerThread(GentlePolicy())
    arm = MovableArm(node)
    status = Recorder(node, String, "/policy/status", qos=200)
    graph = sim_graph(tmp, domain, server=server.address)
    try:
        graph.start(only=["policy"])
        assert wait_for(lambda: arm.q[0] > HOME[0] + 0.05, 60), graph.log("policy")[-2000:]
        n, moved_from = len(status.msgs), len(arm.commands)
        arm.move_to(FAR)  # by hand, or by another controller: nobody tells the policy node
        assert wait_for(lambda: arm.q[0] > FAR[0] + 0.05, 60), graph.log("policy")[-2000:]
    finally:
        graph.stop_all()
        arm.close()
        server.close()
    assert arm.bad == [], "every command followed was within one velocity step of the arm"
    after = [json.loads(m.data) for m in status.msgs[n:]]
    assert any("approaching a new plan from the measured joints" in s.get("approaching", "") for s in after)
    for s in after:
        if s["command"] is not None and s["measured"] is not None:
            gap = np.abs(np.asarray(s["command"]) - np.asarray(s["measured"]))
            assert np.all(gap <= BOUND + ATOL), (s["command"], s["measured"])
    followed = np.array(arm.commands[moved_from:])
    near_far = followed[np.all(np.abs(followed - FAR) < 0.5, axis=1)]
    assert len(near_far) and np.all(np.abs(np.diff(near_far, axis=0)) <= STEP + ATOL)
    assert max(s["max_command_gap"] for s in after) <= float(BOUND[:7].max()) + ATOL


def test_the_sim_waits_for_its_policy_and_exits_naming_what_is_missing(ros):
    node, tmp, domain = ros
    (tmp / "alone").mkdir(exist_ok=True)
    episodes = Recorder(node, String, "/sim/episode", qos=100)
    graph = sim_graph(tmp / "alone", domain, task="touch", max_steps="5", policy_timeout_s="4.0")
    try:
        graph.start(only=["sim"])
        assert graph.processes["sim"].wait(timeout=120) == 1, graph.log("sim")[-2000:]
    finally:
        graph.stop_all()
    log = graph.log("sim")
    assert "waiting for a policy node to connect" in log
    assert "no policy ready after 4 s" in log and "policy server" in log
    assert "episode done" not in log and episodes.msgs == [], "no step of an episode ran without its policy"


def test_the_first_episode_starts_when_the_policy_is_connected(ros):
    node, tmp, domain = ros
    (tmp / "late").mkdir(exist_ok=True)
    server = ServerThread(GentlePolicy())
    graph = sim_graph(tmp / "late", domain, server=server.address, task="touch", seeds="0", max_steps="6",
                      exit_when_done="true")
    try:
        graph.start(only=["sim"])
        assert wait_for(lambda: "waiting for a policy node" in graph.log("sim"), 60), graph.log("sim")[-2000:]
        time.sleep(2.0)  # the policy node is late: nothing may be stepped meanwhile
        assert "episode done" not in graph.log("sim") and "policy ready" not in graph.log("sim")
        graph.start(only=["policy"])
        assert graph.processes["sim"].wait(timeout=120) == 0, graph.log("sim")[-2000:]
    finally:
        graph.stop_all()
        server.close()
    log = graph.log("sim")
    assert "policy ready after" in log
    assert "episode done: task=touch seed=0 success=False steps=6 (max_steps=6)" in log
    assert server.server.policy.calls > 0


def test_a_policy_node_refuses_another_robots_server(ros):
    node, tmp, domain = ros
    (tmp / "two").mkdir(exist_ok=True)
    server = ServerThread(GentlePolicy(), serves="/robot1")  # robot1's server; robot2 left on its address
    graph = sim_graph(tmp / "two", domain, namespace="robot2", server=server.address, task="touch")
    try:
        graph.start(only=["sim", "policy"])
        assert graph.processes["policy"].wait(timeout=120) == 2, graph.log("policy")[-2000:]
        assert wait_for(lambda: graph.supervise() == "policy", 30), "the policy node's exit ends the launch"
        codes = graph.wait_all(60)
    finally:
        graph.stop_all()
        server.close()
    log = graph.log("policy")
    assert (f"policy server {server.address} is another robot's: it serves the robot in namespace '/robot1', "
            "this node is in '/robot2'") in log and "Give each robot its own server address" in log
    assert server.server.policy.calls == 0, "robot1's policy never drove robot2"
    assert codes["sim"] == 0


def test_after_a_list_of_seeds_the_sim_keeps_publishing_clock_and_joint_states(ros):
    from rosgraph_msgs.msg import Clock
    from sensor_msgs.msg import JointState

    from tests.ros.helpers import rclpy_latched

    node, tmp, domain = ros
    (tmp / "after").mkdir(exist_ok=True)
    clock, joints = Recorder(node, Clock, "/clock", qos=100), Recorder(node, JointState, "/joint_states", qos=100)
    instruction = Recorder(node, String, "/vla/instruction", qos=rclpy_latched())
    graph = sim_graph(tmp / "after", domain, task="touch", seeds="0", max_steps="3", use_sim_time="true",
                      wait_for_policy="false")
    try:
        graph.start(only=["sim"])
        assert wait_for(lambda: "the list of seeds is done" in graph.log("sim"), 120), graph.log("sim")[-2000:]
        n_clock, n_joints = len(clock.msgs), len(joints.msgs)
        assert wait_for(lambda: len(clock.msgs) > n_clock + 5 and len(joints.msgs) > n_joints + 5, 30)
        assert graph.processes["sim"].poll() is None
    finally:
        graph.stop_all()
    stamps = [m.clock.sec + m.clock.nanosec * 1e-9 for m in clock.msgs[n_clock:]]
    assert np.all(np.diff(stamps) > 0), "sim time goes on"
    assert instruction.msgs and instruction.msgs[-1].data == "", "nothing left to do: the policy node holds"
