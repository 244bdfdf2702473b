"""Safety filter: every chunk is checked whole before any of it reaches an actuator.

It checks what the robot config declares each action dimension to be (`vla.robot`): a `position`
(an absolute joint target), a `delta` (a relative command) or an `absolute` setpoint that is not a
measured joint (a gripper effort). It never pretends a delta is a joint.

Checks, in order: shape; finite values (a NaN or inf rejects the chunk, always); the jump
between the chunk's first action and the current command (the measured joint state before
the first command), which suggests a chunk computed for another state; the action bounds
(joint position limits for positions); the per-tick step limit, which is the joint's velocity
limit times the control period unless a stricter one is configured. The start jump and the step
limit apply to position dimensions only: a delta is a displacement, not a place to jump from, and
an absolute setpoint has no measured value to move from. In 'clamp' mode violations are clamped
(to the bounds, every step, the first included, rate-limited); in 'reject' mode the chunk is
refused. A rejected chunk makes the loop hold, and a policy that keeps proposing the same jump
from the same state would hold for ever: that is why 'clamp' is the default. Every intervention
is counted by kind ("position" for a joint target outside its limits, "bounds" for any other
action outside its bounds).

The gap bound ties every command to the arm as it is measured, not only to the last command: a position
may be at most `max_gap` (the robot config's max_velocity x command_gap_s) from its joint measured at
that tick. A last command further than that from the measured joints (a reset, a hand-moved arm, a
fault, a stale plan) is no reference any more: the step limit and the start jump are then measured from
the joints themselves (`reference`), so the arm approaches the next plan from where it is at the
velocity limits, and a hold holds the measured joints, never the far command.

More checks serve the loop and the publisher, the last line before the arm: `hold_state` says whether
a measured state may be used (within the STATE bounds), `hold_action` what action holds the robot still
(a position: the last command or the measured joint; a delta: 0; an absolute: the last command or its
`hold` value), and `check_command` whether one command may be sent (nothing is clamped there: a command
that fails is not sent at all).
"""

from __future__ import annotations

from collections import Counter
from dataclasses import dataclass, field

import numpy as np

from vla.robot import RobotConfig

MODES = ("clamp", "reject")


@dataclass
class SafetyReport:
    """What happened to one chunk."""

    accepted: bool
    interventions: dict[str, int] = field(default_factory=dict)
    reason: str = ""


class SafetyFilter:
    # A joint resting at its stop may read a hair beyond the limit (encoder resolution, compliance):
    # such a reading, up to this fraction of the joint's range, is taken as the limit. A glitch is not.
    STATE_MARGIN = 0.01
    # Commands travel as float32 actions: a rounding of that size is not a violation.
    COMMAND_ATOL = 1e-5

    def __init__(self, robot: RobotConfig, mode: str = "clamp", max_start_jump: float = 0.35,
                 max_step: np.ndarray | float | None = None):
        if mode not in MODES:
            raise ValueError(f"safety mode {mode!r}; expected one of {MODES}")
        self.mode = mode
        self.names = robot.action_names
        self.lower = robot.lower.astype(np.float64)
        self.upper = robot.upper.astype(np.float64)
        self.state_names = robot.state_names
        self.state_lower = robot.state_lower.astype(np.float64)
        self.state_upper = robot.state_upper.astype(np.float64)
        kinds = np.array(robot.action_kinds)
        self.position = kinds == "position"  # start jump, step limit, held at the measured joint
        self.positions = np.flatnonzero(self.position)
        self.position_state = robot.position_state_index  # the state value measuring each position
        self.deltas = np.flatnonzero(kinds == "delta")  # held with 0
        # The hold before any command: an absolute at its `hold`, a delta at 0 (a position: the measured joint).
        self.hold_values = np.array([a.hold if a.kind == "absolute" else 0.0 for a in robot.actions], dtype=np.float64)
        # Joint robots keep their words ("joint limits"); other robots' dimensions are not joints.
        self.joints = robot.joint_actions
        self._bounds = "joint limits" if self.joints else "action bounds"
        self._state_bounds = "joint limits" if self.joints else "state bounds"
        dt = 1.0 / robot.control_rate_hz
        self.velocity_step = robot.max_velocity.astype(np.float64) * dt  # inf for non-position dimensions
        self.max_step = self.velocity_step if max_step is None else np.where(
            self.position, np.minimum(self.velocity_step, max_step), np.inf)
        self.max_start_jump = np.broadcast_to(max_start_jump, self.lower.shape)
        self.max_gap = np.where(self.position, robot.max_command_gap.astype(np.float64), np.inf)
        self.counts: Counter[str] = Counter()
        self.chunks = Counter()

    def _measured_positions(self, measured) -> np.ndarray | None:
        """The measured state in action space: each position's joint, 0 elsewhere (None: no usable state)."""
        if measured is None:
            return None
        measured = np.asarray(measured)
        if measured.shape != (len(self.state_names),) or not np.all(np.isfinite(measured)):
            return None
        ref = np.zeros(len(self.names))  # float64, whatever the state's type
        ref[self.positions] = measured[self.position_state]
        return ref

    def gap(self, command, measured) -> np.ndarray:
        """Per action dimension, how far `command` is from the measured joint (0 for non-positions; inf when
        there is no usable measured state)."""
        joints = self._measured_positions(measured)
        if joints is None or command is None:
            return np.full(len(self.names), np.inf)
        return np.where(self.position, np.abs(np.asarray(command) - joints), 0.0)  # float64, as `joints`

    def far(self, command, measured) -> np.ndarray:
        """Which positions of `command` lie beyond the gap bound from the measured joints."""
        return self.position & ~(self.gap(command, measured) <= self.max_gap + self.COMMAND_ATOL)

    def reference(self, measured, previous) -> tuple[np.ndarray | None, bool]:
        """(the start-jump and step reference in action space, rebased). The last command sent while it is
        within the gap bound of the measured joints; else, and with no last command, the measured joint for
        each position (`rebased` True when a last command was dropped for being far). None: neither a last
        command nor a usable measured state."""
        joints = self._measured_positions(measured)
        if previous is not None:
            previous = np.asarray(previous, dtype=np.float64)
            if joints is None or previous.shape != (len(self.names),) or not np.all(np.isfinite(previous)) \
                    or not self.far(previous, measured).any():  # a broken command is refused, not rebased
                return previous, False
            ref = previous.copy()
            ref[self.positions] = joints[self.positions]
            return ref, True
        return joints, False

    def at_measured(self, command, measured) -> np.ndarray | None:
        """`command` with each position replaced by its measured joint (other dimensions kept); None when
        there is no command or no usable measured state."""
        joints = self._measured_positions(measured)
        if command is None or joints is None:
            return None
        out = np.array(command, dtype=np.float64)
        out[self.positions] = joints[self.positions]
        return out

    def check(self, chunk, measured: np.ndarray, previous: np.ndarray | None = None
              ) -> tuple[np.ndarray | None, SafetyReport]:
        """(safe chunk or None, report). `measured` is the robot's state (observation.state); `previous` the
        last command sent (the reference of the step limit; the measured joints when there is none or when it
        is beyond the gap bound from them: `reference`)."""
        measured = np.asarray(measured, dtype=np.float64)
        report = self._check(chunk, measured, self.reference(measured, previous)[0])
        self.chunks["accepted" if report.accepted else "rejected"] += 1
        self.counts.update(report.interventions)
        return self._safe, report  # None unless accepted

    def _bound_kinds(self, out: np.ndarray) -> dict[str, int]:
        counts = {"position": int((out & self.position[None]).sum()), "bounds": int((out & ~self.position[None]).sum())}
        return {k: v for k, v in counts.items() if v}

    def _check(self, chunk, measured: np.ndarray, reference: np.ndarray | None) -> SafetyReport:
        self._safe = None
        D, S = len(self.names), len(self.state_names)
        a = np.asarray(chunk, dtype=np.float64)
        if a.ndim != 2 or a.shape[1] != D or a.shape[0] == 0:
            return SafetyReport(False, {"shape": 1}, f"chunk of shape {a.shape}; expected (K, {D})")
        if measured.shape != (S,) or not np.all(np.isfinite(measured)):
            return SafetyReport(False, {"state": 1}, f"measured state {measured.shape} is not {S} finite values")
        if reference.shape != (D,) or not np.all(np.isfinite(reference)):  # the start-jump and step reference
            return SafetyReport(False, {"state": 1}, f"previous command {reference.shape} is not {D} finite values")
        bad = ~np.isfinite(a)
        if bad.any():
            return SafetyReport(False, {"non_finite": int(bad.sum())}, "chunk holds NaN or inf")
        interventions: dict[str, int] = {}
        jump = self.position & (np.abs(a[0] - reference) > self.max_start_jump)
        if jump.any():
            interventions["start_jump"] = int(jump.sum())
            if self.mode == "reject":
                names = [self.names[i] for i in np.flatnonzero(jump)]
                return SafetyReport(False, interventions, f"first action jumps more than "
                                    f"{self.max_start_jump[self.position].max():.2f} from the current command "
                                    f"at {names}")
            # clamp mode: the step limiter below moves there no faster than the velocity limits allow
        out = (a < self.lower) | (a > self.upper)
        if out.any():
            interventions.update(self._bound_kinds(out))
            if self.mode == "reject":
                return SafetyReport(False, interventions, f"targets outside the {self._bounds}" if self.joints else
                                    f"actions outside the {self._bounds} at "
                                    f"{sorted({self.names[i] for i in np.flatnonzero(out.any(axis=0))})}")
            a = np.clip(a, self.lower, self.upper)
        p = self.positions
        previous = reference
        steps = 0
        for k in range(len(a)):  # rate-limit positions: each at most max_step from the one before
            delta = a[k, p] - previous[p]
            over = np.abs(delta) > self.max_step[p] + 1e-12
            if over.any():
                steps += int(over.sum())
                if self.mode == "reject":
                    return SafetyReport(False, {**interventions, "step": steps}, "a step exceeds the velocity limit")
                a[k, p] = previous[p] + np.clip(delta, -self.max_step[p], self.max_step[p])
            previous = a[k]
        if steps:
            interventions["step"] = steps
        self._safe = a.astype(np.float32)
        return SafetyReport(True, interventions)

    def limit_tick(self, action: np.ndarray, previous: np.ndarray | None,
                   measured: np.ndarray | None = None) -> tuple[np.ndarray, bool]:
        """Last line before the actuator: bounds (all dimensions), step (positions, from `reference`) and,
        with a measured state, the gap bound (positions within max_gap of their measured joints) for one
        action; (safe action, changed)."""
        a = np.clip(action, self.lower, self.upper)  # float64, as the bounds
        ref, _ = self.reference(measured, previous)
        p = self.positions
        if ref is not None:
            a[p] = ref[p] + np.clip(a[p] - ref[p], -self.max_step[p], self.max_step[p])
        joints = self._measured_positions(measured)
        if joints is not None:  # within the joint limits still: the band is cut towards a joint inside them
            near = np.clip(a[p], joints[p] - self.max_gap[p], joints[p] + self.max_gap[p])
            if np.any(near != a[p]):
                self.counts["gap"] += 1
                a[p] = near
        changed = not np.allclose(a, action, atol=1e-9)
        if changed:
            self.counts["tick_limit"] += 1
        return a, changed

    def hold_state(self, measured) -> tuple[np.ndarray | None, str]:
        """A measured state as one to act on and hold from: (state, "") or (None, why it cannot be one).

        It must be the robot's state_dim finite values within the STATE bounds; a reading at most
        STATE_MARGIN of the range beyond a bound is taken as the bound itself (the returned state is clipped)."""
        S, names = len(self.state_names), self.state_names
        q = np.asarray(measured, dtype=np.float64) if measured is not None else np.zeros(0)
        if q.shape != (S,):
            return None, f"measured state has shape {q.shape}; expected ({S},) for {names}"
        bad = ~np.isfinite(q)
        if bad.any():
            return None, f"measured state is not finite at {_dims(names, bad, q)}"
        lower, upper = self.state_lower, self.state_upper
        margin = self.STATE_MARGIN * (upper - lower)
        out = (q < lower - margin) | (q > upper + margin)
        if out.any():
            return None, f"measured state outside the {self._state_bounds} at {_dims(names, out, q, lower, upper)}"
        return np.clip(q, lower, upper), ""

    def hold_action(self, measured_state: np.ndarray | None, last_command: np.ndarray | None) -> np.ndarray | None:
        """The action that holds the robot still (float64), or None when there is none.

        A position holds the last command, else (no last command, or one beyond the gap bound from the
        measured joints) the measured joint (`measured_state`, a state that `hold_state` accepted, or None);
        a delta holds with 0; an absolute setpoint holds the last command,
        else its configured `hold`. None when a position has neither a last command nor a measured state."""
        if last_command is not None:
            hold = np.array(last_command, dtype=np.float64)
            hold[self.deltas] = 0.0
            if measured_state is not None:  # a far command is no hold: the joints are
                hold[self.positions] = self.reference(measured_state, hold)[0][self.positions]
            return hold
        if len(self.positions) and measured_state is None:
            return None
        hold = self.hold_values.copy()
        if len(self.positions):
            hold[self.positions] = np.asarray(measured_state)[self.position_state]
        return hold

    def check_command(self, command, previous: np.ndarray | None, measured: np.ndarray | None = None) -> SafetyReport:
        """Whether one command may be published: action_dim finite values within the bounds; with a measured
        state (one `hold_state` accepted), each position within the gap bound of its measured joint; each
        position at most one velocity step (max velocity x control period) from `previous`, the last command
        sent, or from the measured joint when there is none or it is beyond the gap bound (`reference`). A
        robot with positions and no reference cannot have its step checked: refused. Deltas and absolute
        setpoints have no step to check."""
        D, names = len(self.names), self.names
        a = np.asarray(command, dtype=np.float64) if command is not None else np.zeros(0)
        if a.shape != (D,):
            return SafetyReport(False, {"shape": 1}, f"command of shape {a.shape}; expected ({D},) for {names}")
        bad = ~np.isfinite(a)
        if bad.any():
            return SafetyReport(False, {"non_finite": int(bad.sum())},
                                f"command is not finite at {_dims(names, bad, a)}")
        out = (a < self.lower - self.COMMAND_ATOL) | (a > self.upper + self.COMMAND_ATOL)
        if out.any():
            return SafetyReport(False, self._bound_kinds(out[None]),
                                f"command outside the {self._bounds} at {_dims(names, out, a, self.lower, self.upper)}")
        if not len(self.positions):
            return SafetyReport(True)
        if measured is not None:
            far = self.far(a, measured)
            if far.any():
                gap = self.gap(a, measured)
                detail = ", ".join(f"{names[i]} by {gap[i]:.4f} (at most {self.max_gap[i]:.4f})"
                                   for i in np.flatnonzero(far))
                return SafetyReport(False, {"gap": int(far.sum())},
                                    f"command is beyond the gap bound from the measured joints: {detail}")
        sent = previous is not None
        previous, rebased = self.reference(measured, previous)
        if previous is None:
            return SafetyReport(False, {"no_reference": 1},
                                "no reference for the step check: no command sent yet and no valid measured state")
        step = np.abs(a - previous)  # `reference` gives float64
        over = self.position & ~(step <= self.velocity_step + self.COMMAND_ATOL)  # a NaN reference fails too
        if over.any():
            detail = ", ".join(f"{names[i]} by {step[i]:.4f} (at most {self.velocity_step[i]:.4f})"
                               for i in np.flatnonzero(over))
            return SafetyReport(False, {"step": int(over.sum())},
                                "command steps beyond the velocity limit from "
                                + ("the measured joints (the last command sent is beyond the gap bound)" if rebased
                                   else "the last command sent" if sent else "the measured joints") + f": {detail}")
        return SafetyReport(True)

    def summary(self) -> dict[str, int]:
        return {**{f"chunks_{k}": v for k, v in self.chunks.items()}, **dict(self.counts)}


def _dims(names: list[str], mask: np.ndarray, values: np.ndarray, lower: np.ndarray | None = None,
          upper: np.ndarray | None = None) -> str:
    """The dimensions where `mask` holds, by name, with their values (and bounds), for a message."""
    parts = []
    for i in np.flatnonzero(mask):
        where = f" (limits [{lower[i]:.4f}, {upper[i]:.4f}])" if lower is not None else ""
        parts.append(f"{names[i]}={values[i]:.4f}{where}")
    return "[" + ", ".join(parts) + "]"
