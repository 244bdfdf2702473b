"""Robot configuration: everything about an arm lives in `configs/robots/<name>.yaml`.

The simulator, the control loop and the ROS 2 nodes read the same file; nothing about a
robot is hard-coded anywhere else. A bad file fails here, at load time, with a message that
names the field, the value given and what was expected.
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
import yaml


def _config_dir() -> Path:
    """The configs: `vla/_configs` in an installed wheel, else the checkout's top-level `configs/`.

    The wheel's copy is looked for first so that a stray `configs/` folder beside the installed
    package (site-packages is shared) is never taken for ours; pyproject.toml maps one into the other.
    """
    package = Path(__file__).resolve().parent
    installed = package / "_configs"
    return installed if installed.is_dir() else package.parent / "configs"


CONFIG_DIR = _config_dir()
ROBOT_DIR = CONFIG_DIR / "robots"


class ConfigError(ValueError):
    """A configuration file or value is invalid."""


@dataclass(frozen=True)
class JointSpec:
    name: str
    lower: float
    upper: float
    max_velocity: float

    def __post_init__(self) -> None:
        if not (math.isfinite(self.lower) and math.isfinite(self.upper) and self.lower < self.upper):
            raise ConfigError(
                f"joint {self.name!r}: limits lower={self.lower}, upper={self.upper}; "
                "expected finite numbers with lower < upper"
            )
        if not (math.isfinite(self.max_velocity) and self.max_velocity > 0):
            raise ConfigError(
                f"joint {self.name!r}: max_velocity={self.max_velocity}; expected a positive number"
            )


@dataclass(frozen=True)
class CameraSpec:
    name: str
    topic: str
    width: int = 128
    height: int = 128
    on_arm: bool = False  # mounted on the arm (a wrist camera): its view moves whenever the arm does

    def __post_init__(self) -> None:
        if not isinstance(self.on_arm, bool):
            raise ConfigError(f"camera {self.name!r}: on_arm={self.on_arm!r}; expected true or false")
        if not self.name.isidentifier():
            raise ConfigError(f"camera name {self.name!r}: expected an identifier like 'wrist'")
        for dim in ("width", "height"):
            value = getattr(self, dim)
            if not (isinstance(value, int) and 8 <= value <= 4096):
                raise ConfigError(f"camera {self.name!r}: {dim}={value!r}; expected an integer in [8, 4096]")


@dataclass(frozen=True)
class ControllerSpec:
    command_topic: str
    type: str
    state_topic: str = "/joint_states"


@dataclass(frozen=True)
class RobotConfig:
    name: str
    joints: tuple[JointSpec, ...]
    gripper: JointSpec
    home: tuple[float, ...]
    control_rate_hz: float
    cameras: tuple[CameraSpec, ...]
    controller: ControllerSpec
    description: str = ""
    source: Path | None = field(default=None, compare=False)

    def __post_init__(self) -> None:
        names = [j.name for j in self.all_joints]
        if len(set(names)) != len(names):
            raise ConfigError(f"robot {self.name!r}: duplicate joint names in {names}")
        if len(self.home) != self.action_dim:
            raise ConfigError(
                f"robot {self.name!r}: home has {len(self.home)} values; expected {self.action_dim} "
                f"(one per joint in {names})"
            )
        for joint, q in zip(self.all_joints, self.home, strict=True):
            if not joint.lower <= q <= joint.upper:
                raise ConfigError(
                    f"robot {self.name!r}: home value {q} for {joint.name!r} is outside "
                    f"[{joint.lower}, {joint.upper}]"
                )
        if not 1 <= self.control_rate_hz <= 1000:
            raise ConfigError(f"robot {self.name!r}: control_rate_hz={self.control_rate_hz}; expected 1..1000")
        if not self.cameras:
            raise ConfigError(f"robot {self.name!r}: no cameras; expected at least one")
        cams = [c.name for c in self.cameras]
        if len(set(cams)) != len(cams):
            raise ConfigError(f"robot {self.name!r}: duplicate camera names in {cams}")

    @property
    def all_joints(self) -> tuple[JointSpec, ...]:
        """Arm joints then the gripper: the order of `observation.state` and `action`."""
        return (*self.joints, self.gripper)

    @property
    def joint_names(self) -> list[str]:
        return [j.name for j in self.all_joints]

    @property
    def action_dim(self) -> int:
        return len(self.joints) + 1

    @property
    def lower(self) -> np.ndarray:
        return np.array([j.lower for j in self.all_joints], dtype=np.float32)

    @property
    def upper(self) -> np.ndarray:
        return np.array([j.upper for j in self.all_joints], dtype=np.float32)

    @property
    def max_velocity(self) -> np.ndarray:
        return np.array([j.max_velocity for j in self.all_joints], dtype=np.float32)

    @property
    def home_array(self) -> np.ndarray:
        return np.array(self.home, dtype=np.float32)

    @property
    def camera_names(self) -> list[str]:
        return [c.name for c in self.cameras]

    @property
    def world_cameras(self) -> list[str]:
        """Cameras that watch the scene from a fixed place (not mounted on the arm)."""
        return [c.name for c in self.cameras if not c.on_arm]


def _require(data: dict[str, Any], key: str, where: str) -> Any:
    if key not in data:
        raise ConfigError(f"{where}: missing required field {key!r}")
    return data[key]


def _joint(data: Any, where: str) -> JointSpec:
    if not isinstance(data, dict):
        raise ConfigError(f"{where}: expected a mapping with name, lower, upper, max_velocity; got {data!r}")
    try:
        return JointSpec(
            name=str(_require(data, "name", where)),
            lower=float(_require(data, "lower", where)),
            upper=float(_require(data, "upper", where)),
            max_velocity=float(_require(data, "max_velocity", where)),
        )
    except (TypeError, ValueError) as exc:
        if isinstance(exc, ConfigError):
            raise
        raise ConfigError(f"{where}: {exc}") from exc


def robot_config_from_dict(data: dict[str, Any], source: Path | None = None) -> RobotConfig:
    """Build and validate a RobotConfig from parsed YAML."""
    where = str(source or "robot config")
    if not isinstance(data, dict):
        raise ConfigError(f"{where}: expected a YAML mapping at the top level")
    joints = _require(data, "joints", where)
    if not isinstance(joints, list) or not joints:
        raise ConfigError(f"{where}: 'joints' must be a non-empty list")
    cameras = _require(data, "cameras", where)
    if not isinstance(cameras, list):
        raise ConfigError(f"{where}: 'cameras' must be a list")
    controller = _require(data, "controller", where)
    try:
        return RobotConfig(
            name=str(_require(data, "name", where)),
            description=str(data.get("description", "")),
            joints=tuple(_joint(j, f"{where}: joints[{i}]") for i, j in enumerate(joints)),
            gripper=_joint(_require(data, "gripper", where), f"{where}: gripper"),
            home=tuple(float(v) for v in _require(data, "home", where)),
            control_rate_hz=float(_require(data, "control_rate_hz", where)),
            cameras=tuple(CameraSpec(**c) for c in cameras),
            controller=ControllerSpec(**controller),
            source=source,
        )
    except TypeError as exc:  # unknown or missing keys in a nested mapping
        raise ConfigError(f"{where}: {exc}") from exc


def available_robots() -> list[str]:
    return sorted(p.stem for p in ROBOT_DIR.glob("*.yaml"))


def load_robot_config(name_or_path: str | Path = "panda") -> RobotConfig:
    """Load `configs/robots/<name>.yaml`, or a YAML file given by path."""
    path = Path(name_or_path)
    if path.suffix not in (".yaml", ".yml"):
        path = ROBOT_DIR / f"{name_or_path}.yaml"
    if not path.is_file():
        raise ConfigError(
            f"robot config {str(name_or_path)!r} not found at {path}; "
            f"known robots: {', '.join(available_robots()) or 'none'}"
        )
    with path.open() as f:
        data = yaml.safe_load(f)
    return robot_config_from_dict(data, source=path)
