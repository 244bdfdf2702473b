"""Safety filter: every chunk is checked whole before any of it reaches an actuator.

Checks, in order: shape; finite values (a NaN or inf rejects the chunk, always); the jump
between the chunk's first action and the current command (the measured joint state before
the first command), which suggests a chunk computed for another state; joint position
limits; the per-tick step limit, which is the joint's velocity limit times the control
period unless a stricter one is configured. In 'clamp' mode violations are clamped
(positions to the limits, every step, the first included, rate-limited); in 'reject' mode
the chunk is refused. A rejected chunk makes the loop hold, and a policy that keeps
proposing the same jump from the same state would hold for ever: that is why 'clamp' is the
default. Every intervention is counted by kind.

Two more checks serve the publisher, the last line before the arm: `hold_state` says whether a
measured joint state may become a hold target, and `check_command` whether one command may be
sent (nothing is clamped there: a command that fails is not sent at all).
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
        self.robot = robot
        self.mode = mode
        self.lower = robot.lower.astype(np.float64)
        self.upper = robot.upper.astype(np.float64)
        dt = 1.0 / robot.control_rate_hz
        self.velocity_step = robot.max_velocity.astype(np.float64) * dt
        self.max_step = self.velocity_step if max_step is None else np.minimum(self.velocity_step, max_step)
        self.max_start_jump = np.broadcast_to(np.asarray(max_start_jump, dtype=np.float64), self.lower.shape)
        self.counts: Counter[str] = Counter()
        self.chunks = Counter()

    def check(self, chunk, measured: np.ndarray, previous: np.ndarray | None = None
              ) -> tuple[np.ndarray | None, SafetyReport]:
        """(safe chunk or None, report). `measured` is the arm's joint state; `previous` the last command
        sent (the reference of the step limit; the measured state when there is none)."""
        ref = measured if previous is None else previous
        report = self._check(chunk, np.asarray(measured, dtype=np.float64), np.asarray(ref, dtype=np.float64))
        self.chunks["accepted" if report.accepted else "rejected"] += 1
        self.counts.update(report.interventions)
        return (self._safe if report.accepted else None), report

    def _check(self, chunk, measured: np.ndarray, reference: np.ndarray) -> SafetyReport:
        self._safe = None
        D = self.robot.action_dim
        a = np.asarray(chunk, dtype=np.float64)
        if a.ndim != 2 or a.shape[1] != D or a.shape[0] == 0:
            return SafetyReport(False, {"shape": 1}, f"chunk of shape {a.shape}; expected (K, {D})")
        if measured.shape != (D,) or not np.all(np.isfinite(measured)):
            return SafetyReport(False, {"state": 1}, f"measured state {measured.shape} is not {D} finite values")
        if reference.shape != (D,) or not np.all(np.isfinite(reference)):  # the start-jump and step reference
            return SafetyReport(False, {"state": 1}, f"previous command {reference.shape} is not {D} finite values")
        bad = ~np.isfinite(a)
        if bad.any():
            return SafetyReport(False, {"non_finite": int(bad.sum())}, "chunk holds NaN or inf")
        interventions: dict[str, int] = {}
        jump = np.abs(a[0] - reference) > self.max_start_jump
        if jump.any():
            interventions["start_jump"] = int(jump.sum())
            if self.mode == "reject":
                names = [n for n, j in zip(self.robot.joint_names, jump, strict=True) if j]
                return SafetyReport(False, interventions, f"first action jumps more than "
                                    f"{self.max_start_jump.max():.2f} from the current command at {names}")
            # clamp mode: the step limiter below moves there no faster than the velocity limits allow
        out = (a < self.lower) | (a > self.upper)
        if out.any():
            interventions["position"] = int(out.sum())
            if self.mode == "reject":
                return SafetyReport(False, interventions, "targets outside the joint limits")
            a = np.clip(a, self.lower, self.upper)
        previous = reference
        steps = 0
        for k in range(len(a)):  # rate-limit: each action at most max_step from the one before
            delta = a[k] - previous
            over = np.abs(delta) > self.max_step + 1e-12
            if over.any():
                steps += int(over.sum())
                if self.mode == "reject":
                    return SafetyReport(False, {**interventions, "step": steps}, "a step exceeds the velocity limit")
                a[k] = previous + np.clip(delta, -self.max_step, self.max_step)
            previous = a[k]
        if steps:
            interventions["step"] = steps
        self._safe = a.astype(np.float32)
        return SafetyReport(True, interventions)

    def limit_tick(self, action: np.ndarray, previous: np.ndarray | None) -> tuple[np.ndarray, bool]:
        """Last line before the actuator: limits and step for one action; (safe action, changed)."""
        a = np.clip(np.asarray(action, dtype=np.float64), self.lower, self.upper)
        if previous is not None:
            a = previous + np.clip(a - previous, -self.max_step, self.max_step)
        changed = not np.allclose(a, action, atol=1e-9)
        if changed:
            self.counts["tick_limit"] += 1
        return a, changed

    def hold_state(self, measured) -> tuple[np.ndarray | None, str]:
        """A measured joint state as a hold target: (state, "") or (None, why it cannot be one).

        It must be D finite values within the joint limits; a reading at most STATE_MARGIN of the
        range beyond a limit is taken as the limit itself (the returned state is clipped)."""
        D, names = self.robot.action_dim, self.robot.joint_names
        q = np.asarray(measured, dtype=np.float64) if measured is not None else np.zeros(0)
        if q.shape != (D,):
            return None, f"measured state has shape {q.shape}; expected ({D},) for {names}"
        bad = ~np.isfinite(q)
        if bad.any():
            return None, f"measured state is not finite at {_joints(names, bad, q)}"
        margin = self.STATE_MARGIN * (self.upper - self.lower)
        out = (q < self.lower - margin) | (q > self.upper + margin)
        if out.any():
            return None, f"measured state outside the joint limits at {_joints(names, out, q, self)}"
        return np.clip(q, self.lower, self.upper), ""

    def check_command(self, command, previous: np.ndarray | None) -> SafetyReport:
        """Whether one command may be published: D finite values within the joint limits, each joint at
        most one velocity step (max velocity x control period) from `previous`, the last command sent
        (the measured state before the first one). Without `previous` no step can be checked: refused."""
        D, names = self.robot.action_dim, self.robot.joint_names
        a = np.asarray(command, dtype=np.float64) if command is not None else np.zeros(0)
        if a.shape != (D,):
            return SafetyReport(False, {"shape": 1}, f"command of shape {a.shape}; expected ({D},) for {names}")
        bad = ~np.isfinite(a)
        if bad.any():
            return SafetyReport(False, {"non_finite": int(bad.sum())},
                                f"command is not finite at {_joints(names, bad, a)}")
        out = (a < self.lower - self.COMMAND_ATOL) | (a > self.upper + self.COMMAND_ATOL)
        if out.any():
            return SafetyReport(False, {"position": int(out.sum())},
                                f"command outside the joint limits at {_joints(names, out, a, self)}")
        if previous is None:
            return SafetyReport(False, {"no_reference": 1},
                                "no reference for the step check: no command sent yet and no valid measured state")
        step = np.abs(a - np.asarray(previous, dtype=np.float64))
        over = ~(step <= self.velocity_step + self.COMMAND_ATOL)  # a NaN reference fails too
        if over.any():
            detail = ", ".join(f"{n} by {s:.4f} (at most {m:.4f})" for n, s, m, o in
                               zip(names, step, self.velocity_step, over, strict=True) if o)
            return SafetyReport(False, {"step": int(over.sum())},
                                f"command steps beyond the velocity limit from the last command sent: {detail}")
        return SafetyReport(True)

    def summary(self) -> dict[str, int]:
        return {**{f"chunks_{k}": v for k, v in self.chunks.items()}, **dict(self.counts)}


def _joints(names: list[str], mask: np.ndarray, values: np.ndarray, limits: SafetyFilter | None = None) -> str:
    """The joints where `mask` holds, with their values (and limits), for a message."""
    parts = []
    for i in np.flatnonzero(mask):
        where = f" (limits [{limits.lower[i]:.4f}, {limits.upper[i]:.4f}])" if limits is not None else ""
        parts.append(f"{names[i]}={values[i]:.4f}{where}")
    return "[" + ", ".join(parts) + "]"
