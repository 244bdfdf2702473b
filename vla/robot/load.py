"""Robot config files: where they are (CONFIG_DIR, ROBOT_DIR), and YAML -> a validated RobotConfig."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import yaml

from vla.robot.config import RobotConfig
from vla.robot.specs import ActionSpec, CameraSpec, ConfigError, ControllerSpec, JointSpec, StateSpec


def _config_dir() -> Path:
    """The configs: `vla/_configs` in an installed wheel, else the checkout's top-level `configs/`.

    The wheel's copy is looked for first so that a stray `configs/` folder beside the installed
    package (site-packages is shared) is never taken for ours; pyproject.toml maps one into the other.
    """
    package = Path(__file__).resolve().parents[1]  # vla/, this file being vla/robot/load.py
    installed = package / "_configs"
    return installed if installed.is_dir() else package.parent / "configs"


CONFIG_DIR = _config_dir()
ROBOT_DIR = CONFIG_DIR / "robots"


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


def _number(data: dict[str, Any], key: str, where: str, required: bool = True) -> float | None:
    if key not in data and not required:
        return None
    value = _require(data, key, where)
    try:
        return float(value)
    except (TypeError, ValueError):
        raise ConfigError(f"{where}: {key}={value!r}; expected a number") from None


def _entries(data: dict[str, Any], key: str, where: str, fields: tuple[str, ...], build) -> tuple:
    """The list `key` of mappings, each with only `fields`, built one by one; errors name the entry."""
    items = _require(data, key, where)
    if not isinstance(items, list) or not items:
        raise ConfigError(f"{where}: {key!r} must be a non-empty list")
    out = []
    for i, item in enumerate(items):
        at = f"{where}: {key}[{i}]"
        if not isinstance(item, dict):
            raise ConfigError(f"{at}: expected a mapping with {', '.join(fields)}; got {item!r}")
        unknown = sorted(set(item) - set(fields))
        if unknown:
            raise ConfigError(f"{at}: unknown field(s) {unknown}; expected only {', '.join(fields)}")
        try:
            out.append(build(item, at))
        except ConfigError as exc:
            raise ConfigError(f"{at}: {exc}" if not str(exc).startswith(where) else str(exc)) from None
    return tuple(out)


def _state_entry(d: dict[str, Any], at: str) -> StateSpec:
    return StateSpec(str(_require(d, "name", at)), _number(d, "lower", at), _number(d, "upper", at))


def _action_entry(d: dict[str, Any], at: str) -> ActionSpec:
    return ActionSpec(str(_require(d, "name", at)), str(_require(d, "kind", at)), _number(d, "lower", at),
                      _number(d, "upper", at), max_velocity=_number(d, "max_velocity", at, required=False),
                      hold=_number(d, "hold", at, required=False))


def robot_config_from_dict(data: dict[str, Any], source: Path | None = None) -> RobotConfig:
    """Build and validate a RobotConfig from parsed YAML."""
    where = str(source or "robot config")
    if not isinstance(data, dict):
        raise ConfigError(f"{where}: expected a YAML mapping at the top level")
    joint_form = [k for k in ("joints", "gripper") if k in data]
    action_form = [k for k in ("state", "actions") if k in data]
    if joint_form and action_form:
        raise ConfigError(f"{where}: both {joint_form} and {action_form} given; expected either 'joints' and "
                          "'gripper' (a joint-position robot) or 'state' and 'actions', not both")
    if not joint_form and not action_form:
        raise ConfigError(f"{where}: missing required field 'joints' (with 'gripper': a joint-position robot) "
                          "or 'actions' (with 'state')")
    cameras = _require(data, "cameras", where)
    if not isinstance(cameras, list):
        raise ConfigError(f"{where}: 'cameras' must be a list")
    if joint_form:
        joints = _require(data, "joints", where)
        if not isinstance(joints, list) or not joints:
            raise ConfigError(f"{where}: 'joints' must be a non-empty list")
        form = dict(joints=tuple(_joint(j, f"{where}: joints[{i}]") for i, j in enumerate(joints)),
                    gripper=_joint(_require(data, "gripper", where), f"{where}: gripper"))
        controller = _require(data, "controller", where)
        home = _require(data, "home", where)
    else:
        form = dict(state=_entries(data, "state", where, ("name", "lower", "upper"), _state_entry),
                    actions=_entries(data, "actions", where,
                                     ("name", "kind", "lower", "upper", "max_velocity", "hold"), _action_entry))
        controller = data.get("controller")
        home = data.get("home") or ()
    try:
        home = tuple(float(v) for v in home)
    except (TypeError, ValueError):
        raise ConfigError(f"{where}: home={home!r}; expected a list of numbers") from None
    gap = _number(data, "command_gap_s", where, required=False)
    try:
        return RobotConfig(
            name=str(_require(data, "name", where)),
            description=str(data.get("description", "")),
            **form,
            home=home,
            control_rate_hz=float(_require(data, "control_rate_hz", where)),
            cameras=tuple(CameraSpec(**c) for c in cameras),
            controller=None if controller is None else ControllerSpec(**controller),
            **({} if gap is None else {"command_gap_s": gap}),
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
        try:
            data = yaml.safe_load(f)
        except yaml.YAMLError as exc:
            raise ConfigError(f"{path}: not valid YAML: {exc}") from None
    return robot_config_from_dict(data, source=path)
