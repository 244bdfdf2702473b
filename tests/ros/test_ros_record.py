"""Demonstrations over ROS 2: the sim node driven by the expert, recorded by the recorder node."""

import signal

import pytest
from std_msgs.msg import Bool, String
from std_srvs.srv import Trigger

from tests.helpers import REPO
from tests.ros.helpers import Recorder, rclpy_latched
from tests.ros.launch_graph import LaunchGraph, call_trigger, ros_env, wait_for
from tests.vla.helpers import TRAIN_MINI
from vla.data import open_dataset
from vla.train.trainer import TrainConfig, train

pytestmark = [pytest.mark.ros, pytest.mark.slow]  # ROS end-to-end: demonstrations recorded over ROS 2, then trained on


def test_expert_over_ros_is_recorded_into_a_dataset_that_trains(ros):
    node, tmp, domain = ros
    out = tmp / "ros_demos"
    graph = LaunchGraph(REPO / "launch" / "record_sim.launch.xml",
                        {"out": str(out), "task": "touch", "seed": "0", "storage": "images"}, tmp,
                        ros_env(tmp, domain))
    success = Recorder(node, Bool, "/vla/task_success", qos=rclpy_latched())
    instruction = Recorder(node, String, "/vla/instruction", qos=rclpy_latched())
    tasks = node.create_publisher(String, "/vla/sim/task", 10)
    try:
        graph.start()
        node.create_client(Trigger, "/recorder/start").wait_for_service(timeout_sec=120)
        for task in ("touch:1", "pick:2"):
            n = len(instruction.msgs)
            tasks.publish(String(data=task))  # a fresh scene, as an operator resets it
            assert wait_for(lambda n=n: len(instruction.msgs) > n, 20)
            assert call_trigger(node, "/recorder/start").success
            assert wait_for(lambda: success.msgs and success.msgs[-1].data, 60), graph.log("sim")[-2000:]
            reply = call_trigger(node, "/recorder/stop")
            assert reply.success, reply.message
        assert call_trigger(node, "/recorder/start").success  # a third episode, interrupted mid-way
        graph.processes["recorder"].send_signal(signal.SIGINT)
        graph.processes["recorder"].wait(timeout=30)
    finally:
        graph.stop_all()
    ds = open_dataset(out)
    assert ds.num_episodes == 2
    assert sorted(ds.tasks) == sorted(m.data for m in instruction.msgs[-2:])
    assert ds.cameras == ["scene", "wrist"] and ds.state_dim == ds.action_dim == 8
    summary = train(out, tmp / "policy_from_ros", "tiny", TrainConfig(steps=3, batch_size=4, warmup_steps=1),
                    progress=False, model_overrides=TRAIN_MINI)
    assert summary["steps"] == 3 and summary["episodes"] == 2
