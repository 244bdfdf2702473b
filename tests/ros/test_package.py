"""The vla_ros package stands alone (issue 19): copied by itself into a workspace it builds complete,
finds its robot configs and parameter defaults in the vla package installed beside it (issue 31: one
copy of each), declares every ROS dependency, describes every launch argument, and refuses bad
start-up parameters with one clear line.

The build uses colcon when one is found ($COLCON, on PATH, or beside this interpreter); otherwise
it runs the package's setup.py the way colcon's ament_python build does (egg_info, build, install
--single-version-externally-managed into the prefix). `make test` needs neither colcon nor ROS
beyond the rclpy wheels.
"""

import ast
import importlib.metadata
import os
import shutil
import subprocess
import sys
import xml.etree.ElementTree as ET
from pathlib import Path

import pytest

from tests.helpers import REPO
from tests.ros.launch_graph import PACKAGE_SRC

pytestmark = pytest.mark.ros
LAUNCH_FILES = ("sim_bringup", "robot_bringup", "record_sim")


def _colcon() -> str | None:
    beside = Path(sys.executable).with_name("colcon")
    return os.environ.get("COLCON") or shutil.which("colcon") or (str(beside) if beside.is_file() else None)


def _build_alone(tmp: Path) -> tuple[Path, str]:
    """Copy the package alone into a fresh workspace and build it: (install prefix, how it was built)."""
    ws = tmp / "ws"
    shutil.copytree(PACKAGE_SRC, ws / "src" / "vla_ros", ignore=shutil.ignore_patterns("__pycache__", "*.egg-info"))
    env = {k: v for k, v in os.environ.items() if k not in ("AMENT_PREFIX_PATH", "PYTHONPATH")}
    colcon = _colcon()
    if colcon:
        cmd = [colcon, "build", "--base-paths", "src", "--build-base", "build", "--install-base", "install"]
        result = subprocess.run(cmd, cwd=ws, env=env, capture_output=True, text=True, timeout=600)
        assert result.returncode == 0, result.stdout[-3000:] + result.stderr[-3000:]
        isolated = ws / "install" / "vla_ros"
        return (isolated if isolated.is_dir() else ws / "install"), f"colcon ({colcon})"
    src, build, prefix = ws / "src" / "vla_ros", ws / "build" / "vla_ros", ws / "install" / "vla_ros"
    build.mkdir(parents=True)
    cmd = [sys.executable, "setup.py", "egg_info", "--egg-base", str(build), "build", "--build-base",
           str(build / "build"), "install", "--prefix", str(prefix), "--record", str(build / "install.log"),
           "--single-version-externally-managed"]
    result = subprocess.run(cmd, cwd=src, env=env, capture_output=True, text=True, timeout=600)
    assert result.returncode == 0, result.stdout[-3000:] + result.stderr[-3000:]
    return prefix, "setup.py, as colcon's ament_python build runs it (no colcon found)"


def test_the_package_copied_alone_builds_with_its_launch_files_and_runs_on_the_vla_packages_configs(tmp_path):
    prefix, how = _build_alone(tmp_path)
    print(f"built with {how} into {prefix}")
    share = prefix / "share" / "vla_ros"
    expected = {f"launch/{name}.launch.xml" for name in LAUNCH_FILES} | {"package.xml"}
    for rel in sorted(expected):
        assert (share / rel).is_file(), f"{rel} not installed; share has {sorted(map(str, share.rglob('*')))}"
        assert (share / rel).read_bytes() == (PACKAGE_SRC / rel).read_bytes(), rel
    assert not (share / "config").exists(), "the parameter files and robot configs are the vla package's only"
    assert (prefix / "share" / "ament_index" / "resource_index" / "packages" / "vla_ros").is_file()
    for exe in ("policy_node", "sim_node", "recorder_node", "policy_server"):
        assert (prefix / "lib" / "vla_ros" / exe).is_file(), f"{exe} is not where ros2 run and launch look"
    site = next(prefix.glob("lib/python*/site-packages"))
    assert (site / "vla_ros" / "policy_node.py").is_file()
    # The top-level entry points include exactly these installed files.
    for name in LAUNCH_FILES:
        include = ET.parse(REPO / "launch" / f"{name}.launch.xml").getroot().find("include").get("file")
        assert (share / include.replace("$(find-pkg-share vla_ros)/", "")).is_file(), include
    # The installed code, from any folder, finds robot_config:=panda and its defaults in the vla package beside it.
    env = {**os.environ, "AMENT_PREFIX_PATH": str(prefix), "PYTHONPATH": os.pathsep.join([str(site), str(REPO)])}
    code = ("import vla_ros; from vla_ros.parameters import PARAMETER_DIR, defaults, robot_config; "
            "from vla_ros.policy_node import PARAMETERS; print(vla_ros.__file__); print(robot_config('panda').source); "
            "print(PARAMETER_DIR); print(defaults('policy_node', PARAMETERS)['controller_type'])")
    result = subprocess.run([sys.executable, "-c", code], env=env, cwd=tmp_path, capture_output=True, text=True,
                            timeout=120)
    assert result.returncode == 0, result.stderr[-3000:]
    module, source, parameters, controller = result.stdout.split()[-4:]
    assert Path(module).is_relative_to(site)
    assert Path(source) == REPO / "configs" / "robots" / "panda.yaml"
    assert Path(parameters) == REPO / "configs" / "ros" and controller == "trajectory"


def _ros_imports() -> set[str]:
    """Top-level modules the nodes import that come from ROS wheels (ros-* distributions)."""
    dists = importlib.metadata.packages_distributions()
    found = set()
    for path in (PACKAGE_SRC / "vla_ros").glob("*.py"):
        for node in ast.walk(ast.parse(path.read_text())):
            names = [a.name for a in node.names] if isinstance(node, ast.Import) else (
                [node.module] if isinstance(node, ast.ImportFrom) and node.module and not node.level else [])
            for name in names:
                top = name.split(".")[0]
                if any(d.lower().startswith("ros-") for d in dists.get(top, [])):
                    found.add(top)
    return found


def test_package_xml_lists_every_ros_package_the_nodes_and_launch_files_use():
    root = ET.parse(PACKAGE_SRC / "package.xml").getroot()
    listed = {e.text for e in root.iter("exec_depend")}
    imported = _ros_imports()
    assert {"rclpy", "diagnostic_msgs", "std_srvs", "sensor_msgs"} <= imported  # the check sees the imports
    assert imported - listed == set(), f"package.xml lacks exec_depend {sorted(imported - listed)}"
    assert {"launch", "launch_xml", "launch_ros"} <= listed


def test_every_launch_argument_is_described_and_the_top_level_files_only_include_the_packages():
    for name in LAUNCH_FILES:
        root = ET.parse(PACKAGE_SRC / "launch" / f"{name}.launch.xml").getroot()
        args = {a.get("name"): a.get("description", "") for a in root.iter("arg")}
        assert {"namespace", "robot_config", "command_topic", "use_sim_time"} <= set(args), name
        assert all(len(d) > 10 for d in args.values()), {k: d for k, d in args.items() if len(d) <= 10}
        entry = ET.parse(REPO / "launch" / f"{name}.launch.xml").getroot()
        assert [el.tag for el in entry] == ["include"], f"launch/{name}.launch.xml is an entry point only"
        assert entry[0].get("file") == f"$(find-pkg-share vla_ros)/launch/{name}.launch.xml"
    for name in ("sim_bringup", "robot_bringup"):
        root = ET.parse(PACKAGE_SRC / "launch" / f"{name}.launch.xml").getroot()
        assert {"server", "policy"} <= {a.get("name") for a in root.iter("arg")}


def _serve(args: list[str], cwd: Path) -> subprocess.CompletedProcess:
    env = {**os.environ, "PYTHONPATH": os.pathsep.join([str(PACKAGE_SRC), str(REPO)])}
    env.pop("AMENT_PREFIX_PATH", None)
    return subprocess.run([sys.executable, "-m", "vla_ros.serve", *args], cwd=cwd, env=env, capture_output=True,
                          text=True, timeout=120)


def test_the_policy_is_found_from_any_folder_and_a_missing_one_stops_with_a_clear_error(tmp_path, monkeypatch):
    monkeypatch.syspath_prepend(str(PACKAGE_SRC))
    from vla_ros.serve import resolve_policy

    monkeypatch.chdir(tmp_path)  # not the repository root, as with ros2 launch from anywhere
    share = tmp_path / "share" / "vla_ros"
    (share / "policies" / "mine").mkdir(parents=True)
    folders = [share / "policies", REPO / "policies"]
    assert resolve_policy("tiny_sim_single", folders) == str(REPO / "policies" / "tiny_sim_single")
    assert resolve_policy("mine", folders) == str(share / "policies" / "mine")  # the share folder first
    assert resolve_policy(str(REPO / "policies" / "tiny_sim_planner"), folders) == str(
        REPO / "policies" / "tiny_sim_planner")
    assert resolve_policy("scripted", folders) == "scripted"
    result = _serve(["--policy", "policies/no_such_policy", "--bind", "tcp://127.0.0.1:0", "--ros-args", "-r",
                     "__node:=policy_server"], tmp_path)
    assert result.returncode == 2, result.stderr
    assert "policy 'policies/no_such_policy' not found" in result.stderr and "pass policy:=" in result.stderr


@pytest.mark.parametrize("node, params, words", [
    ("policy_node", ["controller_type:=trajectori"], "controller_type must be one of ('trajectory', 'forward'), "
                                                     "got 'trajectori'"),
    ("policy_node", ["server_timeout_s:=0.0"], "server_timeout_s must be positive, got 0.0"),
    ("policy_node", ["robot_config:=pandaa"], "robot_config 'pandaa' is none of the vla package's robot configs"),
    ("sim_node", ["controller_type:=fwd"], "controller_type='fwd'"),
    ("sim_node", ["seeds:=1-x"], "seeds='1-x'"),
    # A robot whose actions are not joint positions cannot be driven with JointTrajectory: refused at start-up.
    ("policy_node", ["robot_config:=sawyer_metaworld"], "robot 'sawyer_metaworld' has actions that are not joint "
                                                        "positions (hand_dx (delta), "),
    ("recorder_node", ["out:=data", "robot_config:=sawyer_metaworld"], "drive only joint-position robots"),
])
def test_a_bad_start_up_parameter_stops_the_node_with_one_clear_line(tmp_path, node, params, words):
    env = {**os.environ, "PYTHONPATH": os.pathsep.join([str(PACKAGE_SRC), str(REPO)]), "ROS_HOME": str(tmp_path),
           "ROS_AUTOMATIC_DISCOVERY_RANGE": "LOCALHOST", "ROS_DOMAIN_ID": "199", "MUJOCO_GL": "egl"}
    argv = [sys.executable, "-m", f"vla_ros.{node}", "--ros-args"] + [x for p in params for x in ("-p", p)]
    result = subprocess.run(argv, cwd=tmp_path, env=env, capture_output=True, text=True, timeout=180)
    output = result.stdout + result.stderr
    assert result.returncode == 2, output[-3000:]
    assert "not starting: " in output and words in output, output[-3000:]
    assert "Traceback" not in output


def test_the_nodes_refuse_a_robot_whose_actions_are_not_joints_or_that_names_no_controller(tmp_path, monkeypatch):
    import yaml

    monkeypatch.syspath_prepend(str(PACKAGE_SRC))
    from vla_ros.parameters import StartupError, robot_config

    assert robot_config("panda").joint_actions
    with pytest.raises(StartupError, match=r"robot_config 'sawyer_metaworld': robot 'sawyer_metaworld' has actions "
                                           r"that are not joint positions \(hand_dx \(delta\), hand_dy \(delta\), "
                                           r"hand_dz \(delta\), gripper \(absolute\); state \['hand_x'"):
        robot_config("sawyer_metaworld")
    panda = yaml.safe_load((REPO / "configs" / "robots" / "panda.yaml").read_text())
    joints = [*panda["joints"], panda["gripper"]]
    no_controller = {k: v for k, v in panda.items() if k not in ("joints", "gripper", "controller")}
    no_controller["state"] = [{k: j[k] for k in ("name", "lower", "upper")} for j in joints]
    no_controller["actions"] = [{**j, "kind": "position"} for j in joints]
    path = tmp_path / "arm.yaml"
    path.write_text(yaml.safe_dump(no_controller))
    with pytest.raises(StartupError, match="robot 'panda' names no 'controller'"):
        robot_config(str(path))
