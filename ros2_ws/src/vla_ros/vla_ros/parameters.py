"""What the nodes share about start-up: declared parameters, the refusal to start, robot configs, topic names.

Every parameter is declared with a description (`ros2 param describe`) and, when it is fixed at
start-up, read-only, so a change at run time is refused by rclpy itself. A bad start-up value
raises StartupError, which `spin` turns into one clear line and a non-zero exit.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

from rcl_interfaces.msg import ParameterDescriptor

from vla.robot import ConfigError, RobotConfig, available_robots, load_robot_config

PACKAGE = "vla_ros"


class StartupError(ValueError):
    """A start-up parameter is invalid: the node does not start, and says which and why."""


# name -> (default, description, read_only)
Spec = dict[str, tuple[Any, str, bool]]


def declare(node, spec: Spec, dynamic: tuple[str, ...] = ()) -> dict[str, Any]:
    """Declare `spec` on `node` with descriptors; the start-up values by name (public rclpy API only)."""
    for name, (default, description, read_only) in spec.items():
        descriptor = ParameterDescriptor(description=description, read_only=read_only,
                                         dynamic_typing=name in dynamic)
        node.declare_parameter(name, default, descriptor)
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
    """A robot config by path, or by name: `<share>/config/robots/<name>.yaml` first, then the vla package's.

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
    share = share_dir()
    installed = share / "config" / "robots" / f"{name_or_path}.yaml" if share else None
    if installed is not None and installed.is_file():
        return load_robot_config(installed)
    try:
        return load_robot_config(name_or_path)
    except ConfigError as exc:
        where = f"{installed.parent} or " if installed is not None else ""
        raise StartupError(f"robot_config {name_or_path!r} is in neither {where}the vla package's robot configs "
                           f"({', '.join(available_robots())}); give a YAML path or one of those names") from exc


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
