"""How the graph ends (issue 19): SIGINT and SIGTERM stop every process with status 0, and the policy
server's exit shuts the launch down (on_exit="shutdown" in the launch files), with real processes and
real signals. `ros2 launch` sends SIGINT on shutdown; systemd and docker send SIGTERM."""

import json
import signal

import pytest
from std_msgs.msg import String

from tests.helpers import REPO, SHIPPED_POLICY, free_address
from tests.ros.helpers import Recorder, rclpy_latched
from tests.ros.launch_graph import LaunchGraph, ros_env, wait_for

pytestmark = pytest.mark.ros


@pytest.mark.parametrize("launch", ["sim_bringup", "robot_bringup"])
def test_the_policy_server_the_policy_node_and_the_sim_end_the_launch_when_they_exit(launch, tmp_path):
    graph = LaunchGraph(REPO / "ros2_ws" / "src" / "vla_ros" / "launch" / f"{launch}.launch.xml", {}, tmp_path, {})
    expected = {"policy_server": "shutdown", "policy": "shutdown"}
    expected |= {"sim": "shutdown"} if launch == "sim_bringup" else {}
    assert graph.on_exit() == expected


@pytest.mark.slow  # ROS end-to-end: the whole graph with the shipped policy, per signal
@pytest.mark.skipif(not (SHIPPED_POLICY / "model.safetensors").is_file(), reason="no shipped policy")
@pytest.mark.parametrize("sig", [signal.SIGINT, signal.SIGTERM], ids=["SIGINT", "SIGTERM"])
def test_a_signal_to_the_server_shuts_the_launch_down_and_everything_exits_0(ros, sig):
    node, tmp, domain = ros
    (tmp / sig.name).mkdir()
    args = {"policy": str(SHIPPED_POLICY), "server": free_address(), "task": "touch"}
    graph = LaunchGraph(REPO / "launch" / "sim_bringup.launch.xml", args, tmp / sig.name,
                        ros_env(tmp / sig.name, domain))
    status = Recorder(node, String, "/policy/status")
    try:
        graph.start()
        # Running: the policy node is connected to the server and commands the sim.
        running = lambda: any(json.loads(s.data).get("inferences", 0) > 0 for s in status.msgs)  # noqa: E731
        assert wait_for(lambda: running() or graph.processes["policy_server"].poll() is not None, 120), (
            graph.log("policy")[-2000:] + graph.log("policy_server")[-2000:])
        assert running(), graph.log("policy_server")[-2000:]
        graph.processes["policy_server"].send_signal(sig)
        assert wait_for(lambda: graph.supervise() == "policy_server", 30), graph.log("policy_server")[-2000:]
        codes = graph.wait_all(60)
    finally:
        graph.stop_all()
    logs = {name: graph.log(name)[-1500:] for name in codes}
    assert codes == {"policy_server": 0, "sim": 0, "policy": 0}, logs
    assert f"vla serve: stopped ({sig.name})" in graph.log("policy_server")
    assert "Traceback" not in "".join(graph.log(name) for name in codes), logs


@pytest.mark.slow  # ROS end-to-end: the record graph until its first episode ends
def test_sigterm_to_each_node_exits_0(ros):
    node, tmp, domain = ros
    (tmp / "term").mkdir()
    graph = LaunchGraph(REPO / "launch" / "record_sim.launch.xml", {"out": str(tmp / "term" / "data")},
                        tmp / "term", ros_env(tmp / "term", domain))
    # The sim's episode outcomes are latched: one published before this subscription matched still
    # arrives (the volatile instruction topic raced the subscription on a busy machine).
    episodes = Recorder(node, String, "/sim/episode", qos=rclpy_latched())
    try:
        graph.start()
        assert wait_for(lambda: episodes.msgs, 300), graph.log("sim")[-2000:]
        assert wait_for(lambda: "recorder" in "".join(n.split("/")[-1] for n in node.get_node_names()), 60)
        for proc in graph.processes.values():
            proc.send_signal(signal.SIGTERM)
        codes = graph.wait_all(60)
    finally:
        graph.stop_all()
    assert codes == {"sim": 0, "recorder": 0}, {name: graph.log(name)[-1500:] for name in codes}


NODE_SCRIPT = """
import sys, time
from rclpy.node import Node
from vla_ros.spin import spin

def make_node():
    print("constructing", flush=True)
    time.sleep(float(sys.argv[1]))
    node = Node("slow_%d" % int(time.time() * 1e6 % 1e6))
    def work():
        print("callback started", flush=True)
        time.sleep(1.0)
        print("callback done", flush=True)
    node.create_timer(0.05, work)
    return node

spin(make_node, before_shutdown=lambda node: print("cleaned", flush=True))
print("exited", flush=True)
"""


@pytest.mark.slow  # signals to real processes, each waiting out a node's start-up or a 1 s callback
@pytest.mark.parametrize("sig", [signal.SIGINT, signal.SIGTERM], ids=["SIGINT", "SIGTERM"])
@pytest.mark.parametrize("when", ["constructing", "callback started"])
def test_a_signal_lets_the_running_callback_finish_then_cleans_up_and_exits_0(ros, sig, when):
    """Signals only set a flag (vla_ros.spin): a signal during start-up or during a callback (a
    recorder writing an episode) ends the process after that work, with the node's clean-up, status 0."""
    import subprocess
    import sys

    node, tmp, domain = ros
    proc = subprocess.Popen([sys.executable, "-c", NODE_SCRIPT, "1.0"], stdout=subprocess.PIPE,
                            stderr=subprocess.STDOUT, text=True, env=ros_env(tmp, domain), cwd=REPO)
    lines = []
    try:
        for line in proc.stdout:
            lines.append(line.strip())
            if line.strip() == when:
                proc.send_signal(sig)
                break
        out, _ = proc.communicate(timeout=60)
    finally:
        proc.kill()
    lines += [line.strip() for line in out.splitlines()]
    assert proc.returncode == 0, lines
    done = [line for line in lines if line in ("callback done", "cleaned", "exited")]
    expected = ["cleaned", "exited"] if when == "constructing" else ["callback done", "cleaned", "exited"]
    assert done == expected, lines
