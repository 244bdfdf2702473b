"""What the nodes share about start-up: declared parameters, the refusal to start, robot configs, topic names.

Every parameter is declared with a description (`ros2 param describe`) and, when it is fixed at
start-up, read-only, so a change at run time is refused by rclpy itself. Its default comes from the
node's parameter file in the vla package (PARAMETER_DIR: `configs/ros/<node>.yaml` in a checkout,
`vla/_configs/ros/` in the installed wheel), the one copy of those defaults; a parameter file given
with `--params-file` or a `-p` overrides them as usual. A bad start-up value raises StartupError,
which `spin` turns into one clear line and a non-zero exit.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import yaml
from rcl_interfaces.msg import ParameterDescriptor

from vla.robot import CONFIG_DIR, ROBOT_DIR, RobotConfig, available_robots, load_robot_config

PACKAGE = "vla_ros"
PARAMETER_DIR = CONFIG_DIR / "ros"  # <node>.yaml: the nodes' defaults, shipped with the vla package


class StartupError(ValueError):
    """A start-up parameter is invalid: the node does not start, and says which and why."""


# name -> (type, description, read_only); the default is the node's parameter file's (`defaults`)
Spec = dict[str, tuple[type, str, bool]]

# The entries several nodes declare alike (each node adds its own `controller_type`).
ROBOT_CONFIG: Spec = {
    "robot_config": (str, "robot name (the vla package's configs/robots/<name>.yaml) or a YAML path", True)}
COMMAND_TOPIC: Spec = {
    "command_topic": (str, "command topic (empty: the robot config's topic, or forward_position_controller/commands)",
                      True)}
INSTRUCTION_TOPIC: Spec = {"instruction_topic": (str, "instruction topic (std_msgs/String, latched)", True)}


def defaults(node_file: str, spec: Spec) -> dict[str, Any]:
    """The default of each parameter in `spec`, from PARAMETER_DIR/<node_file>.yaml (a ROS parameter file).

    The file must give every parameter of `spec`, nothing else, each of the spec's type (0.0 for a float:
    rclpy fixes a parameter's type from its default)."""
    path = PARAMETER_DIR / f"{node_file}.yaml"
    try:
        data = yaml.safe_load(path.read_text())
        (values,) = [entry["ros__parameters"] for entry in data.values()]
        missing, unknown = sorted(set(spec) - set(values)), sorted(set(values) - set(spec))
    except (OSError, yaml.YAMLError, AttributeError, KeyError, TypeError, ValueError) as exc:
        raise StartupError(f"parameter file {path}: {type(exc).__name__}: {exc}; expected one '/**/<node>: "
                           "ros__parameters: {...}' mapping (is the vla package installed whole?)") from None
    if missing or unknown:
        raise StartupError(f"parameter file {path}: no default for {missing}, unknown parameters {unknown}; "
                           f"expected exactly {sorted(spec)}")
    for name, (kind, _, _) in spec.items():
        if type(values[name]) is not kind:  # exact: a bool is no int here, an int no float
            raise StartupError(f"parameter file {path}: {name}={values[name]!r} is a {type(values[name]).__name__}; "
                               f"expected a {kind.__name__}")
    return values


def declare(node, spec: Spec, node_file: str, dynamic: tuple[str, ...] = ()) -> dict[str, Any]:
    """Declare `spec` on `node` with descriptors and the defaults of its parameter file `node_file`; the
    start-up values by name (public rclpy API only)."""
    values = defaults(node_file, spec)
    for name, (_, description, read_only) in spec.items():
        descriptor = ParameterDescriptor(description=description, read_only=read_only,
                                         dynamic_typing=name in dynamic)
        node.declare_parameter(name, values[name], descriptor)
    return {p.name: p.value for p in node.get_parameters(list(spec))}


def share_dir() -> Path | None:
    """This package's installed share folder (None when it is not installed, e.g. run from the sources)."""
    try:
        from ament_index_python.packages import PackageNotFoundError, get_package_share_directory
    except ImportError:
        return None
    try:
        return Path(get_package_share_directory(PACKAGE))
    except (PackageNotFoundError, LookupError, OSError, ValueError):
        return None


def robot_config(name_or_path: str) -> RobotConfig:
    """A robot config by path, or by name: the vla package's `configs/robots/<name>.yaml` (ROBOT_DIR).

    Only a robot these nodes can drive: its actions are joint positions measured by its state (they go out
    as JointTrajectory / joint position commands and come back as JointState) and it names a controller.
    Any other robot (Meta-World's Sawyer: end-effector deltas, simulated only) is refused at start-up."""
    return _joint_position_robot(name_or_path, _load(name_or_path))


def _load(name_or_path: str) -> RobotConfig:
    path = Path(name_or_path).expanduser()
    if path.suffix in (".yaml", ".yml"):
        if not path.is_file():
            raise StartupError(f"robot_config {name_or_path!r}: no such file (a path is taken relative to "
                               f"{Path.cwd()}); give an absolute path or a robot name like 'panda'")
        return load_robot_config(path)
    if name_or_path not in available_robots():
        raise StartupError(f"robot_config {name_or_path!r} is none of the vla package's robot configs "
                           f"({', '.join(available_robots())}, in {ROBOT_DIR}); give a YAML path or one of those names")
    return load_robot_config(name_or_path)


def _joint_position_robot(name_or_path: str, robot: RobotConfig) -> RobotConfig:
    if not robot.joint_actions:
        kinds = ", ".join(f"{a.name} ({a.kind})" for a in robot.actions)
        raise StartupError(f"robot_config {name_or_path!r}: robot {robot.name!r} has actions that are not joint "
                           f"positions ({kinds}; state {robot.state_names}); the ROS nodes command joint "
                           "positions (JointTrajectory) and read JointState, so they drive only joint-position "
                           "robots")
    if robot.controller is None:
        raise StartupError(f"robot_config {name_or_path!r}: robot {robot.name!r} names no 'controller' (command "
                           "and state topics); the ROS nodes need one")
    return robot


def relative(topic: str) -> str:
    """A robot config's topic taken relative to the node's namespace, so one namespace moves a whole robot.

    Robot configs name topics as a driver in the root namespace publishes them (`/joint_states`);
    a topic given as a parameter is used as given (a leading slash there is a deliberate choice).
    """
    return topic.lstrip("/")
