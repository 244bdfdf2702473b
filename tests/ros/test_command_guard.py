"""The last line of defence at the publisher (issue 19), over real Fast DDS on loopback.

A fake arm in the test process publishes /joint_states and the cameras, follows every command
it receives and reports faults on demand: NaN, inf or an out-of-limit joint, or a joint missing
from the message, at start-up and mid-run. Every command the policy node publishes is counted;
none may be non-finite, outside the joint limits or a step beyond the velocity limits, and
commands must flow again once the joint states are good.
"""

import json
import sys

import numpy as np
import pytest
import rclpy
from diagnostic_msgs.msg import DiagnosticArray, DiagnosticStatus
from rclpy.parameter import Parameter
from sensor_msgs.msg import JointState
from std_msgs.msg import String

from tests.helpers import REPO, ServerThread
from tests.ros.helpers import ATOL, HOME, ROBOT, STEP, FakeArm, GentlePolicy, Recorder
from tests.ros.launch_graph import PACKAGE_SRC, LaunchGraph, ros_env, wait_for
from vla.control import LoopStatus

pytestmark = pytest.mark.ros


# What the policy node's status says about each fault.
FAULT_WORDS = {"nan": "joint3=nan", "inf": "joint6=-inf", "out_of_limits": "outside the joint limits at [joint4",
               "missing_joint": "lacks joints ['joint3']"}


def _statuses(recorder, start=0):
    return [json.loads(m.data) for m in recorder.msgs[start:]]


def _reported(status, start, words, publishing, n=10):
    """`n` statuses since `start` give the fault as the reason, publishing (holding) or not."""
    hits = [s for s in _statuses(status, start) if words in s["reason"] and s["publishing"] == publishing]
    return len(hits) >= n


@pytest.mark.parametrize("fault", sorted(FAULT_WORDS))
def test_bad_joint_states_never_reach_the_command_topic(ros, fault):
    node, tmp, domain = ros
    words = FAULT_WORDS[fault]
    server = ServerThread(GentlePolicy(), "tcp://127.0.0.1:0")
    arm = FakeArm(node)
    arm.fault = fault  # from start-up
    status = Recorder(node, String, "/policy/status", qos=100)
    diagnostics = Recorder(node, DiagnosticArray, "/diagnostics")
    graph = LaunchGraph(REPO / "launch" / "sim_bringup.launch.xml", {"server": server.address}, tmp,
                        ros_env(tmp, domain))
    try:
        graph.start(only=["policy"])
        assert wait_for(lambda: _reported(status, 0, words, publishing=False), 60), graph.log("policy")[-2000:]
        assert arm.commands == [], "nothing is published without a valid state or a command sent"

        def says_not_publishing():
            return any(d.status[0].level == DiagnosticStatus.WARN and words in d.status[0].message
                       and {kv.key: kv.value for kv in d.status[0].values}.get("publishing") == "False"
                       for d in diagnostics.msgs)

        assert wait_for(says_not_publishing, 10)

        arm.fault = None  # the driver recovers: the policy drives the arm
        assert wait_for(lambda: arm.q[0] > HOME[0] + 0.05, 30), graph.log("policy")[-2000:]

        arm.fault = fault  # and fails again mid-run: the last command sent is held
        n = len(status.msgs)
        assert wait_for(lambda: _reported(status, n, words, publishing=True), 30), graph.log("policy")[-2000:]
        held_from, m = len(arm.commands), len(status.msgs)
        assert wait_for(lambda: len(status.msgs) >= m + 5, 10)
        held = np.array(arm.commands[held_from:])
        assert len(held) >= 3 and np.all(held == held[0]), "one position is held"

        arm.fault = None
        resumed = arm.q[0]
        assert wait_for(lambda: arm.q[0] > resumed + 0.03, 30), graph.log("policy")[-2000:]
    finally:
        graph.stop_all()
        server.close()
        arm.close()
    assert len(arm.commands) >= 10
    assert arm.bad == [], arm.bad[:5]
    # The loop itself never handed the publisher a bad command: its check is the backstop, not the fix.
    assert _statuses(status)[-1]["refused"] == {}, graph.log("policy")[-2000:]


# --- the guard itself, in the node, with a loop that misbehaves ------------------------------------------
class BrokenLoop:
    """Stands in for the control loop: gives whatever action the test sets."""

    def __init__(self):
        self.action, self.resynced = None, []
        self.executor = type("Executor", (), {"inferences": 0})()

    def step(self, obs, stamps):
        return LoopStatus(None if self.action is None else np.asarray(self.action, dtype=np.float32))

    def resync(self, command):
        self.resynced.append(None if command is None else np.array(command))


@pytest.fixture
def policy_node(ros):
    if str(PACKAGE_SRC) not in sys.path:
        sys.path.insert(0, str(PACKAGE_SRC))
    from vla_ros.policy_node import PolicyNode

    context = rclpy.Context()
    rclpy.init(context=context, domain_id=ros[2])
    node = PolicyNode(context=context, parameter_overrides=[Parameter("instruction", value="touch")])
    sent = []
    node.command_pub = type("Pub", (), {"publish": lambda self, msg: sent.append(msg)})()
    node.loop = BrokenLoop()
    for cam in ROBOT.cameras:
        node.images[cam.name] = np.zeros((cam.height, cam.width, 3), np.uint8)
    yield node, node.loop, sent
    node.destroy_node()
    rclpy.shutdown(context=context)


def _positions(msgs):
    return [np.array(m.points[0].positions) for m in msgs]


def test_the_publisher_refuses_bad_commands_holds_the_last_one_sent_and_says_why(policy_node):
    node, loop, sent = policy_node
    node._on_joints(JointState(name=ROBOT.joint_names, position=list(HOME)))
    loop.action = HOME + 0.5 * STEP * np.r_[np.ones(7), -1]
    node._tick()
    assert len(sent) == 1 and np.allclose(_positions(sent)[0], loop.action, atol=ATOL)
    good = _positions(sent)[0]
    bad_commands = {"non_finite": np.where(np.arange(8) == 1, np.nan, good),
                    "position": np.where(np.arange(8) == 3, 0.2, good),
                    "step": good + np.where(np.arange(8) == 0, 2 * STEP, 0)}
    for kind, command in bad_commands.items():
        loop.action = command
        node._tick()
        assert np.allclose(_positions(sent)[-1], good, atol=ATOL), f"{kind}: the last command sent is held"
        assert node.refused[kind] >= 1 and node.refusal and node.holding and node.publishing
        assert np.allclose(loop.resynced[-1], good, atol=ATOL)  # the loop goes on from what was sent
    assert len(sent) == 4 and node.ticks["held"] == 3
    loop.action = good  # the loop behaves again
    node._tick()
    assert not node.holding and node.ticks["sent"] == 2
    diagnostics = []
    node.diagnostics_pub = type("Pub", (), {"publish": lambda self, msg: diagnostics.append(msg.status[0])})()
    node._diagnostics()
    node._diagnostics()
    assert diagnostics[0].level == DiagnosticStatus.ERROR and "refused 3 command(s)" in diagnostics[0].message
    values = {kv.key: kv.value for kv in diagnostics[0].values}
    assert values["commands_refused"] == "3" and values["refused_step"] == "1" and "velocity" in values["last_refusal"]
    assert diagnostics[1].level == DiagnosticStatus.OK  # no refusal since, moving: running


def test_without_a_command_sent_a_refused_command_or_a_bad_state_publishes_nothing(policy_node):
    node, loop, sent = policy_node
    node._on_joints(JointState(name=ROBOT.joint_names, position=list(HOME)))
    loop.action = HOME + np.where(np.arange(8) == 0, 2 * STEP, 0)  # two steps from the measured state
    node._tick()
    assert sent == [] and node.refused["step"] == 1 and not node.publishing
    loop.action = None  # the loop has nothing to hold either
    bad = HOME.copy()
    bad[2] = np.nan
    node._on_joints(JointState(name=ROBOT.joint_names, position=list(bad)))
    node._tick()
    assert sent == [] and "joint3=nan" in node.state_problem and node.ticks["silent"] == 2


def test_after_a_dry_run_the_first_command_is_checked_against_the_measured_state(policy_node):
    node, loop, sent = policy_node
    node._on_joints(JointState(name=ROBOT.joint_names, position=list(HOME)))
    assert node.set_parameters([Parameter("dry_run", value=True)])[0].successful
    for k in range(1, 3):  # in a dry run the loop moves on (within the gap bound); the arm does not
        loop.action = HOME + np.where(np.arange(8) == 0, k * STEP, 0)
        node._tick()
    assert sent == [] and not node.refused
    assert node.set_parameters([Parameter("dry_run", value=False)])[0].successful
    assert loop.resynced[-1] is None  # the loop goes on from the measured state
    node._tick()  # the dry run's last target is two steps from where the arm is: refused
    assert sent == [] and node.refused == {"step": 1}
    loop.action = HOME + np.where(np.arange(8) == 0, 3 * STEP, 0)  # 0.65 rad: beyond the gap bound (0.54)
    node._tick()
    assert sent == [] and node.refused == {"step": 1, "gap": 1}
    loop.action = HOME + np.where(np.arange(8) == 0, STEP, 0)
    node._tick()
    assert len(sent) == 1 and np.allclose(_positions(sent)[0], loop.action, atol=ATOL)
