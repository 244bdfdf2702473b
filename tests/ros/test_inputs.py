"""What the policy node does with its inputs over real rclpy (issue 20's untested claims): joint states
that stop coming hold the arm until they come back; a new instruction drops the old plan, a chunk
still being computed for it included."""

import json
import threading

import numpy as np
import pytest
from std_msgs.msg import String

from tests.helpers import REPO, ServerThread
from tests.ros.helpers import HOME, FakeArm, GentlePolicy, Recorder
from tests.ros.launch_graph import LaunchGraph, ros_env, wait_for

pytestmark = pytest.mark.ros


def _policy_graph(tmp, domain, server):
    return LaunchGraph(REPO / "launch" / "sim_bringup.launch.xml", {"server": server.address}, tmp,
                       ros_env(tmp, domain))


def test_joint_states_that_stop_hold_the_arm_until_they_come_back(ros):
    node, tmp, domain = ros
    server = ServerThread(GentlePolicy())
    arm = FakeArm(node)
    status = Recorder(node, String, "/policy/status", qos=100)
    graph = _policy_graph(tmp, domain, server)
    try:
        graph.start(only=["policy"])
        assert wait_for(lambda: arm.q[0] > HOME[0] + 0.05, 60), graph.log("policy")[-2000:]
        n = len(status.msgs)
        arm.joints_silent = True  # the driver stops reporting; the cameras go on
        stale = lambda: any("no fresh joint_states" in json.loads(s.data)["reason"]  # noqa: E731
                            for s in status.msgs[n:])
        assert wait_for(stale, 30), graph.log("policy")[-2000:]
        held_from = len(arm.commands)
        assert wait_for(lambda: len(arm.commands) >= held_from + 5, 10)
        held = np.array(arm.commands[held_from:])
        assert np.allclose(held, held[0]), "the last command is held while the state is stale"
        arm.joints_silent = False
        moved_from = arm.q[0]
        assert wait_for(lambda: arm.q[0] > moved_from + 0.03, 30), "moving again once the state comes back"
        assert arm.bad == []
    finally:
        graph.stop_all()
        arm.close()
        server.close()


class ColourPolicy(GentlePolicy):
    """Moves joint1 up for the red cube and down for the blue one; a request can be held on a gate."""

    def __init__(self):
        super().__init__()
        self.tasks: list[str] = []
        self.gate, self.blocked = threading.Event(), threading.Event()
        self.gate.set()

    def predict_chunk(self, obs):
        self.tasks.append(obs["task"])
        if not self.gate.is_set():
            self.blocked.set()
            self.gate.wait(30)
        sign = -1.0 if "blue" in obs["task"] else 1.0
        state = np.asarray(obs["observation.state"], dtype=np.float32)
        return np.stack([state + np.r_[sign * 0.01 * k, np.zeros(7)] for k in range(1, 6)]).astype(np.float32)


def test_a_new_instruction_drops_the_old_plan_and_the_chunk_in_flight_for_it(ros):
    node, tmp, domain = ros
    policy = ColourPolicy()
    server = ServerThread(policy)
    arm = FakeArm(node)  # instruction: touch the red cube
    graph = _policy_graph(tmp, domain, server)
    try:
        graph.start(only=["policy"])
        assert wait_for(lambda: arm.q[0] > HOME[0] + 0.05, 60), graph.log("policy")[-2000:]
        policy.gate.clear()
        assert policy.blocked.wait(30)  # a chunk for the red cube is being computed
        arm.instruction.publish(String(data="touch the blue cube"))
        assert wait_for(lambda: "episode: 'touch the blue cube'" in graph.log("policy"), 30)
        changed_at, top = len(arm.commands), max(c[0] for c in arm.commands)
        policy.gate.set()  # the red chunk arrives after the change
        assert wait_for(lambda: arm.q[0] < top - 0.05, 30), graph.log("policy")[-2000:]
        after = np.array([c[0] for c in arm.commands[changed_at:]])
        assert np.all(np.diff(after) <= 1e-9), "no action of the red plan after the change"
        assert "blue" in policy.tasks[-1] and arm.bad == []
    finally:
        graph.stop_all()
        arm.close()
        server.close()
