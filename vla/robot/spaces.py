"""The state and action spaces of a robot and the limits the safety filter reads, for any robot.

`Spaces` is mixed into RobotConfig: it derives every view from the config's `state` and `actions` entries
(and `command_gap_s`), so a joint-position robot and an end-effector-delta robot answer the same questions.
"""

from __future__ import annotations

import numpy as np

from vla.robot.specs import ActionSpec, StateSpec


class Spaces:
    """Names, sizes, bounds and limits of `observation.state` and of an action, from `state` and `actions`."""

    state: tuple[StateSpec, ...]
    actions: tuple[ActionSpec, ...]
    command_gap_s: float

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
