"""The entries of a robot config: a joint, a state value, an action value, a camera, a controller.

Each validates itself in `__post_init__` and raises ConfigError naming the entry, the value given and
what was expected. The action kinds (position, delta, absolute) are described in `vla.robot`'s docstring.
"""

from __future__ import annotations

import math
from dataclasses import dataclass


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
    """One action value: what it means (`kind`, see `vla.robot`'s docstring) and its bounds."""

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
