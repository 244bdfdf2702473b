"""The ROS 2 graph over real Fast DDS on loopback: sim node, policy node, policy server."""

import json
from pathlib import Path

import numpy as np
import pytest
from diagnostic_msgs.msg import DiagnosticArray
from std_msgs.msg import String
from trajectory_msgs.msg import JointTrajectory

from tests.helpers import REPO, SHIPPED_POLICY, ServerThread, free_address
from tests.ros.helpers import ROBOT, GentlePolicy, Recorder, rclpy_latched, sim_graph
from tests.ros.launch_graph import LaunchGraph, ros_env, wait_for

pytestmark = pytest.mark.ros


def _positions(msgs):
    return np.array([m.points[0].positions for m in msgs])


def test_launch_files_describe_the_nodes_that_exist(ros, tmp_path):
    _, _, domain = ros
    expected = {"sim_bringup": {"policy_server", "sim", "policy"}, "robot_bringup": {"policy_server", "policy"},
                "record_sim": {"sim", "recorder"}}
    assert {p.name.removesuffix(".launch.xml") for p in (REPO / "launch").glob("*.launch.xml")} == set(expected)
    for launch, names in expected.items():
        graph = LaunchGraph(REPO / "launch" / f"{launch}.launch.xml", {}, tmp_path, ros_env(tmp_path, domain))
        cmds = graph.commands()
        assert set(cmds) == names
        for name, argv in cmds.items():
            for i, a in enumerate(argv):
                if a == "--params-file":
                    assert Path(argv[i + 1]).is_file() and argv[i + 1].endswith(".yaml")
            assert not any("$(" in a for a in argv), (name, argv)


def test_unsafe_chunks_never_reach_the_command_topic(ros):
    node, tmp, domain = ros
    server = ServerThread(GentlePolicy(corrupt=True), "tcp://127.0.0.1:0")
    graph = sim_graph(tmp, domain, server=server.address, task="touch")
    commands = Recorder(node, JointTrajectory, ROBOT.controller.command_topic)
    status = Recorder(node, String, "/policy/status")
    diagnostics = Recorder(node, DiagnosticArray, "/diagnostics")
    try:
        graph.start(only=["sim", "policy"])
        assert wait_for(lambda: len(commands.msgs) >= 40, 60), graph.log("policy")[-2000:]
        assert wait_for(lambda: diagnostics.msgs, 5)
        keys = {kv.key for kv in diagnostics.msgs[-1].status[0].values}
        assert {"ticks_sent", "ticks_held", "dry_run"} <= keys
    finally:
        graph.stop_all()
        server.close()
    q = _positions(commands.msgs)
    assert np.all(np.isfinite(q))
    assert np.all(q >= ROBOT.lower - 1e-6) and np.all(q <= ROBOT.upper + 1e-6)
    step = np.abs(np.diff(q, axis=0))
    assert np.all(step <= ROBOT.max_velocity / ROBOT.control_rate_hz + 1e-6)
    last = json.loads(status.msgs[-1].data)
    assert last["safety"].get("position", 0) >= 1  # the out-of-limit chunks, clamped
    # NaN chunks are refused twice over: the server answers with an error (the node holds), and the
    # node's safety filter would reject them too (tests/vla/control/test_control.py).
    reasons = [json.loads(s.data)["reason"] for s in status.msgs]
    assert any("policy failed" in r and "invalid chunk" in r for r in reasons)


def test_server_loss_holds_the_arm_and_the_loop_resumes(ros):
    node, tmp, domain = ros
    server = ServerThread(GentlePolicy(), "tcp://127.0.0.1:0")
    address = server.address
    graph = sim_graph(tmp, domain, server=address, task="touch")
    commands = Recorder(node, JointTrajectory, ROBOT.controller.command_topic)
    status = Recorder(node, String, "/policy/status")
    try:
        graph.start(only=["sim", "policy"])
        assert wait_for(lambda: any(not json.loads(s.data)["holding"] for s in status.msgs), 60)
        server.close()  # the policy server dies mid-episode

        def holding_for_the_server():
            reason = json.loads(status.msgs[-1].data)["reason"] if status.msgs else ""
            return "no answer from the policy" in reason or "policy failed" in reason

        # How soon it holds is the watchdog's inference timeout, tested on an injected clock
        # (tests/vla/control/test_control.py); here, on a machine of any load, that it does.
        assert wait_for(holding_for_the_server, 30)
        n = len(commands.msgs)
        assert wait_for(lambda: len(commands.msgs) >= n + 3, 60)  # the bound on waiting, not a timing check
        held = _positions(commands.msgs[n:])
        assert np.allclose(held, held[0]), "the arm holds one position"
        server = ServerThread(GentlePolicy(), address)  # it comes back
        n = len(status.msgs)
        assert wait_for(lambda: any(not json.loads(s.data)["holding"] for s in status.msgs[n:]), 60)
        moving = _positions(commands.msgs[-5:])
        assert not np.allclose(moving, moving[0])
    finally:
        graph.stop_all()
        server.close()


# Seeds 0-3 of `push`: the shipped policy solves 3 of them in `vla eval` (seed 2 fails), so the test
# sees both outcomes.
PUSH_SEEDS = "0-3"


def eval_outcomes(task: str, seeds: list[int]) -> list[tuple[int, bool, int]]:
    """(seed, success, steps) per seed, as `vla eval --policy policies/tiny_sim_single` runs them."""
    from sim import make_env
    from vla.evaluate import rollout
    from vla.loading import policy_factory

    env = make_env(task)
    policy = policy_factory(str(SHIPPED_POLICY))(env)
    try:
        return [(r.seed, r.success, r.steps) for r in (rollout(env, policy, seed) for seed in seeds)]
    finally:
        env.close()


@pytest.mark.slow  # ROS end-to-end: four episodes of the shipped policy over ROS 2
@pytest.mark.skipif(not (SHIPPED_POLICY / "model.safetensors").is_file(), reason="no shipped policy")
def test_end_to_end_sim_policy_server_and_policy_node_complete_a_task(ros):
    """Lockstep on sim time: each command reaches the sim for the tick it answers, however slow inference
    is, so the episodes over ROS end exactly as `vla eval` ends them (success and step count per seed)."""
    node, tmp, domain = ros
    # Refill when the queue is empty and no cross-fade: the loop `vla eval` runs the policy with.
    graph = sim_graph(tmp, domain, policy=str(SHIPPED_POLICY), server=free_address(), task="push",
                   seeds=PUSH_SEEDS, lockstep="true", use_sim_time="true", refill_threshold="0", blend="0")
    episodes = Recorder(node, String, "/sim/episode", qos=rclpy_latched(depth=100))
    summary = Recorder(node, String, "/sim/summary", qos=rclpy_latched())
    try:
        graph.start()
        # A generous bound for a stuck graph only: the outcome does not depend on how long it takes.
        assert wait_for(lambda: summary.msgs, 900), graph.log("policy")[-3000:] + graph.log("sim")[-2000:]
    finally:
        graph.stop_all()
    outcomes = [json.loads(m.data) for m in episodes.msgs]
    assert all(o["lockstep_timeouts"] == 0 for o in outcomes), outcomes
    over_ros = [(o["seed"], o["success"], o["steps"]) for o in outcomes]
    expected = eval_outcomes("push", [0, 1, 2, 3])
    assert over_ros == expected
    assert {success for _, success, _ in expected} == {True, False}, "both outcomes are exercised"
