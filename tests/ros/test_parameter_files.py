"""One source for the nodes' parameter files (issue 31): each node declares its defaults from the vla package's
`configs/ros/<node>.yaml` (no copy in the ROS package), a node started from a launch file runs with them, and
a parameter file given with --params-file overrides them."""

import importlib
import os
import subprocess
import sys

import pytest
import rclpy
import yaml
from rcl_interfaces.srv import GetParameters
from rclpy.parameter import parameter_value_to_python

from tests.helpers import REPO, free_address
from tests.ros.launch_graph import PACKAGE_SRC, LaunchGraph, ros_env, wait_for
from vla.robot import CONFIG_DIR

pytestmark = pytest.mark.ros
NODES = ("policy_node", "sim_node", "recorder_node")


@pytest.fixture
def vla_ros(monkeypatch):
    monkeypatch.syspath_prepend(str(PACKAGE_SRC))
    import vla_ros.parameters

    return vla_ros.parameters


def _file_defaults(node_file: str) -> dict:
    (entry,) = yaml.safe_load((REPO / "configs" / "ros" / f"{node_file}.yaml").read_text()).values()
    return entry["ros__parameters"]


def test_the_ros_package_holds_no_copy_of_a_config_file():
    copies = sorted(str(p.relative_to(PACKAGE_SRC)) for p in PACKAGE_SRC.rglob("*.y*ml"))
    assert copies == [], "the parameter files and robot configs live in configs/ (the vla package) only"
    for launch in (PACKAGE_SRC / "launch").glob("*.launch.xml"):
        assert "/config/" not in launch.read_text(), f"{launch.name} names a parameter file in the package's share"


@pytest.mark.parametrize("node_file", NODES)
def test_each_node_declares_the_defaults_of_its_parameter_file_in_the_vla_package(node_file, vla_ros, ros):
    assert vla_ros.PARAMETER_DIR == CONFIG_DIR / "ros"
    spec = importlib.import_module(f"vla_ros.{node_file}").PARAMETERS
    context = rclpy.Context()
    rclpy.init(context=context, domain_id=ros[2])
    try:
        node = rclpy.create_node(f"defaults_{node_file}", context=context)  # a bare node: only the declarations
        values = vla_ros.declare(node, spec, node_file)
        node.destroy_node()
    finally:
        rclpy.shutdown(context=context)
    assert values == _file_defaults(node_file)
    assert all(type(values[name]) is kind for name, (kind, _, _) in spec.items())


def test_a_parameter_file_that_misses_a_default_or_mistypes_one_stops_the_node(vla_ros, monkeypatch, tmp_path):
    from vla_ros.recorder_node import PARAMETERS

    good = {"/**/recorder": {"ros__parameters": _file_defaults("recorder_node")}}
    monkeypatch.setattr(vla_ros, "PARAMETER_DIR", tmp_path)
    cases = [({k: v for k, v in good["/**/recorder"]["ros__parameters"].items() if k != "fps"},
              r"no default for \['fps'\], unknown parameters \[\]"),
             ({**good["/**/recorder"]["ros__parameters"], "fps": 0}, "fps=0 is a int; expected a float")]
    for params, words in cases:
        (tmp_path / "recorder_node.yaml").write_text(yaml.safe_dump({"/**/recorder": {"ros__parameters": params}}))
        with pytest.raises(vla_ros.StartupError, match=words):
            vla_ros.defaults("recorder_node", PARAMETERS)


def test_a_node_started_from_a_launch_file_runs_with_its_parameter_files_defaults(ros):
    node, tmp, domain = ros
    server = free_address()
    (tmp / "defaults").mkdir()
    graph = LaunchGraph(REPO / "launch" / "robot_bringup.launch.xml", {"server": server}, tmp / "defaults",
                        ros_env(tmp, domain))
    assert "--params-file" not in graph.commands()["policy"]
    client = node.create_client(GetParameters, "/policy/get_parameters")
    expected = {**_file_defaults("policy_node"), "policy_server": server, "dry_run": True}  # the launch's own
    try:
        graph.start(only=["policy"])  # no server: the node starts and waits for one
        assert client.wait_for_service(timeout_sec=60), graph.log("policy")[-2000:]
        future = client.call_async(GetParameters.Request(names=list(expected)))
        assert wait_for(future.done, 30), "the policy node did not answer get_parameters"
        values = [parameter_value_to_python(v) for v in future.result().values]
    finally:
        graph.stop_all()
        node.destroy_client(client)
    assert dict(zip(expected, values, strict=True)) == expected


def test_a_parameter_file_given_to_the_node_overrides_the_defaults(tmp_path):
    mine = tmp_path / "my_policy.yaml"
    mine.write_text("/**/policy:\n  ros__parameters:\n    controller_type: trajectori\n")
    env = {**os.environ, "PYTHONPATH": os.pathsep.join([str(PACKAGE_SRC), str(REPO)]), "ROS_HOME": str(tmp_path),
           "ROS_AUTOMATIC_DISCOVERY_RANGE": "LOCALHOST", "ROS_DOMAIN_ID": "198"}
    argv = [sys.executable, "-m", "vla_ros.policy_node", "--ros-args", "--params-file", str(mine)]
    result = subprocess.run(argv, cwd=tmp_path, env=env, capture_output=True, text=True, timeout=180)
    output = result.stdout + result.stderr
    assert result.returncode == 2, output[-3000:]
    assert "not starting: controller_type must be one of ('trajectory', 'forward'), got 'trajectori'" in output
