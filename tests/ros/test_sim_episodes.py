"""The sim node's episodes (issue 19): each outcome (task, seed, success, steps) is logged and published,
and a list of seeds runs back to back, ending with a summary. Two sim nodes from record_sim.launch.xml
run at once in their own namespaces: one driven by the scripted expert (it succeeds), one by nobody
with a short step limit (it fails)."""

import json
import signal

import pytest
from rclpy.qos import DurabilityPolicy, QoSProfile
from std_msgs.msg import String

from tests.helpers import REPO
from tests.ros.helpers import Recorder
from tests.ros.launch_graph import LaunchGraph, ros_env, wait_for

pytestmark = [pytest.mark.ros, pytest.mark.slow]  # ROS end-to-end: two sim nodes run their episodes back to back
OUTCOMES = QoSProfile(depth=100, durability=DurabilityPolicy.TRANSIENT_LOCAL)


def test_a_list_of_seeds_runs_back_to_back_and_ends_with_a_summary(ros):
    node, tmp, domain = ros
    # The idle sim exits when done; the expert's stays up until told, so its latched outcomes reach this
    # node whenever discovery completes (a sim that exited first took them along on a busy machine).
    runs = {"expert": ["seeds:=3-4", "expert:=true", "speed:=5.0", "exit_when_done:=false"],
            "idle": ["seeds:=7,9", "expert:=false", "max_steps:=4", "speed:=5.0", "exit_when_done:=true"]}
    graphs, episodes, summaries = {}, {}, {}
    for name in runs:
        (tmp / name).mkdir(exist_ok=True)
        graphs[name] = LaunchGraph(REPO / "launch" / "record_sim.launch.xml",
                                   {"namespace": name, "task": "touch", "out": str(tmp / name / "unused")},
                                   tmp / name, ros_env(tmp / name, domain))
        episodes[name] = Recorder(node, String, f"/{name}/sim/episode", qos=OUTCOMES)
        summaries[name] = Recorder(node, String, f"/{name}/sim/summary", qos=OUTCOMES)
    try:
        for name, params in runs.items():
            argv = graphs[name].commands()["sim"] + [x for p in params for x in ("-p", p)]
            graphs[name].start_one("sim", argv)
        # The idle sim is done in a second: on a busy machine it can exit before this node has even
        # discovered its publishers, so its outcomes are read from its log; the expert's from the topics
        # as well.
        assert wait_for(lambda: summaries["expert"].msgs, 300), graphs["expert"].log("sim")[-3000:]
        assert wait_for(lambda: len(episodes["expert"].msgs) == 2, 30), "both outcomes, latched"
        assert graphs["idle"].processes["sim"].wait(timeout=300) == 0, "exit_when_done: exits 0 after the summary"
        assert graphs["expert"].processes["sim"].poll() is None, "without exit_when_done the sim stays up"
        graphs["expert"].processes["sim"].send_signal(signal.SIGINT)
        assert graphs["expert"].processes["sim"].wait(timeout=60) == 0
    finally:
        for graph in graphs.values():
            graph.stop_all()
    solved = [json.loads(m.data) for m in episodes["expert"].msgs]
    assert [(o["task"], o["seed"], o["success"], o["ended_by"]) for o in solved] == [
        ("touch", 3, True, "success"), ("touch", 4, True, "success")]
    assert all(0 < o["steps"] < 200 and o["instruction"] for o in solved)
    summary = json.loads(summaries["expert"].msgs[-1].data)
    assert summary["episodes"] == 2 and summary["successes"] == 2 and summary["success_rate"] == 1.0
    idle = graphs["idle"].log("sim")
    for seed in (7, 9):
        assert f"episode done: task=touch seed={seed} success=False steps=4 (max_steps=4)" in idle
    log = graphs["expert"].log("sim")
    for o in solved:
        assert f"episode done: task=touch seed={o['seed']} success=True steps={o['steps']}" in log
    assert "summary: task=touch 2/2 succeeded" in log
    assert "summary: task=touch 0/2 succeeded; 7:fail(4), 9:fail(4)" in graphs["idle"].log("sim")
