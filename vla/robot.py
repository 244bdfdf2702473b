"""Robot configuration: everything about an arm lives in `configs/robots/<name>.yaml`.

The simulator, the control loop and the ROS 2 nodes read the same file; nothing about a
robot is hard-coded anywhere else. A bad file fails here, at load time, with a message that
names the field, the value given and what was expected.

A robot is described in one of two ways:

- a joint-position robot (the Panda): `joints` + `gripper` (+ `home`, `controller`). Each joint is
  both a measured state value and an action, an absolute position target: state == action space.
- any other robot: `state` (what `observation.state` holds, with bounds) and `actions` (what each
  action value means). An action's `kind` is one of
    position  an absolute joint position target (`max_velocity` required; a state entry of the same
              name measures it): step-limited, start-jump checked, held at the last command or the
              measured state;
    delta     a relative command (e.g. an end-effector displacement): only bounded; holding means 0;
    absolute  a bounded setpoint that is not a measured joint (e.g. a gripper effort): held at the
              last command, else at its `hold` value (required, within the bounds).
  `home` (one value per state entry) is required only when there are position actions, and
  `controller` is optional (a simulated robot has no ros2_control controller).

`command_gap_s` (optional, default 0.25 s) bounds how far a command may lead the measured joints: each
position at most its max_velocity x command_gap_s from the joint measured at that tick (the safety
filter's gap bound). It must cover the tracking lag of normal motion (the Panda in the sim lags its
command by up to 0.37 rad = 0.17 s at its velocity limits) and stays short of what a reset, a hand-moved
arm or a stale command opens (1-2 rad).

Both forms give every caller the same view: `state_names`, `state_dim`, `state_lower`/`state_upper`,
`action_names`, `action_dim`, `lower`/`upper` (action bounds), `action_kinds`, `position_mask`,
`joint_actions`. The joint views `all_joints` and `joint_names` exist only for robots whose actions are
joint positions measured by the state (`joint_actions`); elsewhere they raise ConfigError, so that code
written for joints fails loudly instead of taking a delta for a joint (`joints` is then empty and
`gripper` None: they are what a `joints`/`gripper` file gave).
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


def _bounds_problem(lower: float, upper: float) -> str:
    if not (math.isfinite(lower) and math.isfinite(upper) and lower < upper):
        return f"limits lower={lower}, upper={upper}; expected finite numbers with lower < upper"
    return ""


@dataclass(frozen=True)
class JointSpec:
    name: str
    lower: float
    upper: float
    max_velocity: float

    def __post_init__(self) -> None:
        if problem := _bounds_problem(self.lower, self.upper):
            raise ConfigError(f"joint {self.name!r}: {problem}")
        if not (math.isfinite(self.max_velocity) and self.max_velocity > 0):
            raise ConfigError(
                f"joint {self.name!r}: max_velocity={self.max_velocity}; expected a positive number"
            )


@dataclass(frozen=True)
class StateSpec:
    """One value of `observation.state`: a reading outside [lower, upper] (beyond a small margin) is invalid."""

    name: str
    lower: float
    upper: float

    def __post_init__(self) -> None:
        if problem := _bounds_problem(self.lower, self.upper):
            raise ConfigError(f"state {self.name!r}: {problem}")


ACTION_KINDS = ("position", "delta", "absolute")


@dataclass(frozen=True)
class ActionSpec:
    """One action value: what it means (`kind`, see the module docstring) and its bounds."""

    name: str
    kind: str
    lower: float
    upper: float
    max_velocity: float | None = None  # position only, and required there
    hold: float | None = None  # absolute only, and required there

    def __post_init__(self) -> None:
        where = f"action {self.name!r}"
        if self.kind not in ACTION_KINDS:
            raise ConfigError(f"{where}: kind={self.kind!r}; expected one of {', '.join(ACTION_KINDS)}")
        if problem := _bounds_problem(self.lower, self.upper):
            raise ConfigError(f"{where}: {problem}")
        if self.kind == "position":
            if self.max_velocity is None:
                raise ConfigError(f"{where}: kind position needs 'max_velocity' (a positive number, units per second)")
            if not (math.isfinite(self.max_velocity) and self.max_velocity > 0):
                raise ConfigError(f"{where}: max_velocity={self.max_velocity}; expected a positive number")
        elif self.max_velocity is not None:
            raise ConfigError(f"{where}: max_velocity={self.max_velocity} given for kind {self.kind}; "
                              "expected it only for kind position (a joint position target)")
        if self.kind == "absolute":
            if self.hold is None:
                raise ConfigError(f"{where}: kind absolute needs 'hold' (the value held before any command), "
                                  f"within [{self.lower}, {self.upper}]")
            if not (math.isfinite(self.hold) and self.lower <= self.hold <= self.upper):
                raise ConfigError(f"{where}: hold={self.hold} is outside [{self.lower}, {self.upper}]; "
                                  "expected a value within the action's bounds")
        elif self.hold is not None:
            raise ConfigError(f"{where}: hold={self.hold} given for kind {self.kind}; expected it only for kind "
                              "absolute (a position holds the measured state, a delta holds with 0)")

    @property
    def velocity(self) -> float:
        """The velocity limit: max_velocity for a position, none (inf) for the other kinds."""
        return math.inf if self.max_velocity is None else self.max_velocity


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


@dataclass(frozen=True, kw_only=True)
class RobotConfig:
    """A robot. Give `joints` + `gripper` (a joint-position robot) or `state` + `actions`; for the former,
    `state` and `actions` are derived from the joints (so every caller can use them for any robot)."""

    name: str
    control_rate_hz: float
    cameras: tuple[CameraSpec, ...]
    joints: tuple[JointSpec, ...] = ()
    gripper: JointSpec | None = None
    home: tuple[float, ...] = ()
    controller: ControllerSpec | None = None
    state: tuple[StateSpec, ...] = ()
    actions: tuple[ActionSpec, ...] = ()
    description: str = ""
    command_gap_s: float = 0.25  # see the module docstring: the command-to-measured bound, in seconds
    source: Path | None = field(default=None, compare=False)

    def __post_init__(self) -> None:
        if self.joints or self.gripper is not None:
            self._derive_from_joints()
        if not self.actions:
            raise ConfigError(f"robot {self.name!r}: no actions; expected 'joints' and 'gripper', or 'actions'")
        if not self.state:
            raise ConfigError(f"robot {self.name!r}: no state; expected 'state' (what observation.state holds)")
        for what, names in (("state", self.state_names), ("action", self.action_names)):
            if len(set(names)) != len(names):
                raise ConfigError(f"robot {self.name!r}: duplicate {what} names in {names}")
        for a in self.actions:
            if a.kind == "position" and a.name not in self.state_names:
                raise ConfigError(f"robot {self.name!r}: action {a.name!r} of kind position has no state entry of "
                                  f"that name to measure it; state holds {self.state_names}")
        self._check_home()
        if not 1 <= self.control_rate_hz <= 1000:
            raise ConfigError(f"robot {self.name!r}: control_rate_hz={self.control_rate_hz}; expected 1..1000")
        period = 1.0 / self.control_rate_hz
        if not (math.isfinite(self.command_gap_s) and period <= self.command_gap_s <= 10.0):
            raise ConfigError(f"robot {self.name!r}: command_gap_s={self.command_gap_s}; expected seconds between "
                              f"one control period ({period:g}) and 10 (a command may lead the measured joints "
                              "by max_velocity x command_gap_s)")
        if not self.cameras:
            raise ConfigError(f"robot {self.name!r}: no cameras; expected at least one")
        cams = [c.name for c in self.cameras]
        if len(set(cams)) != len(cams):
            raise ConfigError(f"robot {self.name!r}: duplicate camera names in {cams}")

    def _derive_from_joints(self) -> None:
        if self.gripper is None or not self.joints:
            raise ConfigError(f"robot {self.name!r}: a joint-position robot needs both 'joints' (non-empty) "
                              "and 'gripper'")
        names = [j.name for j in self.all_joints]
        if len(set(names)) != len(names):
            raise ConfigError(f"robot {self.name!r}: duplicate joint names in {names}")
        state = tuple(StateSpec(j.name, j.lower, j.upper) for j in self.all_joints)
        actions = tuple(ActionSpec(j.name, "position", j.lower, j.upper, max_velocity=j.max_velocity)
                        for j in self.all_joints)
        # Given both (dataclasses.replace passes the derived ones back): they must be the joints' own.
        if (self.state and self.state != state) or (self.actions and self.actions != actions):
            raise ConfigError(f"robot {self.name!r}: both joints/gripper and state/actions given; expected one "
                              "of them (state and actions follow from the joints)")
        object.__setattr__(self, "state", state)
        object.__setattr__(self, "actions", actions)

    def _check_home(self) -> None:
        if not self.home:
            if self.position_mask.any():
                raise ConfigError(f"robot {self.name!r}: missing 'home'; expected one value per "
                                  f"{'joint' if self.joint_actions else 'state entry'} in {self.state_names} "
                                  "(required when there are position actions)")
            return
        names = self.state_names
        if len(self.home) != self.state_dim:
            where = "joint" if self.joint_actions else "state entry"
            raise ConfigError(
                f"robot {self.name!r}: home has {len(self.home)} values; expected {self.state_dim} "
                f"(one per {where} in {names})"
            )
        for spec, q in zip(self.state, self.home, strict=True):
            if not spec.lower <= q <= spec.upper:
                raise ConfigError(
                    f"robot {self.name!r}: home value {q} for {spec.name!r} is outside "
                    f"[{spec.lower}, {spec.upper}]"
                )

    # --- any robot -----------------------------------------------------------------------------------------
    @property
    def state_names(self) -> list[str]:
        """The names of `observation.state`'s values, in order."""
        return [s.name for s in self.state]

    @property
    def state_dim(self) -> int:
        return len(self.state)

    @property
    def state_lower(self) -> np.ndarray:
        return np.array([s.lower for s in self.state], dtype=np.float32)

    @property
    def state_upper(self) -> np.ndarray:
        return np.array([s.upper for s in self.state], dtype=np.float32)

    @property
    def action_names(self) -> list[str]:
        """The names of an action's values, in order."""
        return [a.name for a in self.actions]

    @property
    def action_dim(self) -> int:
        return len(self.actions)

    @property
    def lower(self) -> np.ndarray:
        """Action lower bounds."""
        return np.array([a.lower for a in self.actions], dtype=np.float32)

    @property
    def upper(self) -> np.ndarray:
        """Action upper bounds."""
        return np.array([a.upper for a in self.actions], dtype=np.float32)

    def clip_action(self, action) -> tuple[np.ndarray, list[str]]:
        """An action as a simulator takes it: (the values limited to the action bounds, the names of those
        that were outside). A wrong shape or a NaN/inf raises ValueError naming the dimensions."""
        names = self.action_names
        a = np.asarray(action, dtype=np.float64)
        if a.shape != (len(names),):
            raise ValueError(f"action has shape {a.shape}; expected ({len(names)},): {names}")
        bad = [n for n, v in zip(names, a, strict=True) if not np.isfinite(v)]
        if bad:
            raise ValueError(f"action has non-finite targets for {bad}: {a.tolist()}")
        lo, hi = self.lower.astype(np.float64), self.upper.astype(np.float64)
        out = (a < lo - 1e-6) | (a > hi + 1e-6)
        return np.clip(a, lo, hi), [n for n, o in zip(names, out, strict=True) if o]

    @property
    def action_kinds(self) -> tuple[str, ...]:
        return tuple(a.kind for a in self.actions)

    @property
    def position_mask(self) -> np.ndarray:
        """Which action dimensions are absolute joint position targets."""
        return np.array([a.kind == "position" for a in self.actions], dtype=bool)

    @property
    def position_state_index(self) -> np.ndarray:
        """For each position action, in order, the index of the state value that measures it."""
        index = {n: i for i, n in enumerate(self.state_names)}
        return np.array([index[a.name] for a in self.actions if a.kind == "position"], dtype=np.intp)

    @property
    def joint_actions(self) -> bool:
        """Every action is a joint position target and the state measures exactly those joints, in order:
        state == action space (the Panda). Code that takes a state for an action, or publishes joint
        trajectories, needs this."""
        return all(a.kind == "position" for a in self.actions) and self.state_names == self.action_names

    @property
    def max_velocity(self) -> np.ndarray:
        """Per action dimension: the velocity limit of a position, inf for the other kinds."""
        return np.array([a.velocity for a in self.actions], dtype=np.float32)

    @property
    def max_command_gap(self) -> np.ndarray:
        """Per action dimension: how far a position command may be from its measured joint (max_velocity x
        command_gap_s); inf for the other kinds, which have no measured value."""
        return (self.max_velocity.astype(np.float64) * self.command_gap_s).astype(np.float32)

    @property
    def home_array(self) -> np.ndarray:
        """The home pose, one value per state entry (for a joint robot: the joint positions)."""
        if not self.home:
            raise ConfigError(f"robot {self.name!r} has no 'home' pose in its config")
        return np.array(self.home, dtype=np.float32)

    @property
    def camera_names(self) -> list[str]:
        return [c.name for c in self.cameras]

    @property
    def world_cameras(self) -> list[str]:
        """Cameras that watch the scene from a fixed place (not mounted on the arm)."""
        return [c.name for c in self.cameras if not c.on_arm]

    # --- joint-position robots only ------------------------------------------------------------------------
    def _require_joints(self, what: str) -> None:
        if not self.joint_actions:
            raise ConfigError(
                f"robot {self.name!r}: {what} is defined only for a joint-position robot (state == action space); "
                f"this one's actions are {[f'{a.name} ({a.kind})' for a in self.actions]} and its state "
                f"{self.state_names}: use action_names / state_names")

    @property
    def all_joints(self) -> tuple[JointSpec, ...]:
        """Arm joints then the gripper: the order of `observation.state` and `action`."""
        if self.joints and self.gripper is not None:
            return (*self.joints, self.gripper)
        self._require_joints("all_joints")  # declared with `actions`, all of them positions: the same joints
        return tuple(JointSpec(a.name, a.lower, a.upper, a.velocity) for a in self.actions)

    @property
    def joint_names(self) -> list[str]:
        """The joints, in the order of `observation.state` and `action` (a joint-position robot only)."""
        self._require_joints("joint_names")
        return self.action_names


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
