"""RobotConfig: one robot, validated whole when it is built (see `vla.robot` for the two ways to describe one)."""

from __future__ import annotations

import math
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

from vla.robot.spaces import Spaces
from vla.robot.specs import ActionSpec, CameraSpec, ConfigError, ControllerSpec, JointSpec, StateSpec


@dataclass(frozen=True, kw_only=True)
class RobotConfig(Spaces):
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
    command_gap_s: float = 0.25  # see `vla.robot`'s docstring: the command-to-measured bound, in seconds
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

    # --- any robot (the state and action views are Spaces') ---------------------------------------------------
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

