"""The control loop: watchdog -> chunk executor -> safety filter -> one safe action per tick.

A hold is the action the safety filter says holds the robot still (`SafetyFilter.hold_action`, by
what the robot config declares each action to be): a joint position holds the last command, or
before the first one the measured joint, and only from a measured state the safety filter accepts
(finite, within the bounds): a NaN read at start-up would otherwise become the hold target and,
through it, every later command. A delta holds with 0 (never with the measured state, which is not
an action at all) and an absolute setpoint (a gripper command) holds the last command, else the
config's `hold` value. With no hold action the tick's action is None: send nothing.

Never far from the arm: every action is within the safety filter's gap bound of the joints measured at
that tick. When the last command is further than that from the measured joints (a reset, a hand-moved
arm, a fault, a chunk planned for a state the arm left), the plan is dropped, in flight included, and
the loop starts again from the measured joints: the next chunk is asked for from this observation and
approached at the velocity limits (`LoopStatus.approaching` says so, with the reason). An e-stop holds
the joints measured when it is raised (not a command that may be pressing into a contact), and its
release starts from the measured joints too.
"""

from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np

from vla.control.executor import ChunkExecutor
from vla.control.safety import SafetyFilter
from vla.control.watchdog import Watchdog
from vla.types import OBS_STATE, Policy


@dataclass
class LoopStatus:
    """What one tick did. `action` is safe to send; when `holding`, it is the action that holds the robot
    (`SafetyFilter.hold_action`: for a joint robot the last command, or the measured state before the first
    one); None when there is nothing valid to hold: send nothing."""

    action: np.ndarray | None
    holding: bool = False
    reason: str = ""
    new_chunk: bool = False
    rejected: bool = False
    interventions: dict[str, int] = field(default_factory=dict)
    approaching: str = ""  # why this tick re-started from the measured joints ("" when it did not)


class ControlLoop:
    def __init__(self, policy: Policy, safety: SafetyFilter, refill_threshold: int = 0, blend: int = 0,
                 asynchronous: bool = False, watchdog: Watchdog | None = None):
        self.policy = policy
        self.safety = safety
        self.watchdog = watchdog
        self.executor = ChunkExecutor(policy.predict_chunk, refill_threshold, blend, asynchronous)
        self.last_command: np.ndarray | None = None
        self.holds = 0
        self.rebases = 0  # ticks that found the last command beyond the gap bound and started from the arm
        self._estop_held = False  # the e-stop's hold target (the joints measured when raised) is set

    def reset(self, policy: bool = True) -> None:
        """A new episode: no plan (a request in flight discarded), no last command: the first tick's reference
        is the measured state. `policy=False` leaves `policy.reset()` to the caller, who may have to wait
        for a request in flight first (a remote policy answers one request at a time)."""
        if policy:
            self.policy.reset()
        self.executor.reset()
        self.last_command = None

    def resync(self, command: np.ndarray | None) -> None:
        """The arm last got `command` (None: nothing yet), not this loop's last action: go on from there."""
        self.executor.drop_queue()
        self.last_command = None if command is None else np.asarray(command, dtype=np.float64)

    def _hold(self, measured: np.ndarray | None, reason: str, plan_invalid: bool = False, **kw) -> LoopStatus:
        """Send the hold action (`SafetyFilter.hold_action` from the last command and the (valid) measured
        state, or None), else nothing. `plan_invalid` (an e-stop): a chunk still in flight is discarded too,
        never executed afterwards."""
        self.holds += 1
        self.executor.drop_queue(in_flight=plan_invalid)
        target = self.safety.hold_action(measured, self.last_command)
        if target is None:
            return LoopStatus(None, holding=True, reason=f"{reason}; nothing to hold: no command yet", **kw)
        self.last_command = np.asarray(target, dtype=np.float64)
        return LoopStatus(self.last_command.astype(np.float32), holding=True, reason=reason, **kw)

    def step(self, obs: dict, stamps: dict[str, float] | None = None) -> LoopStatus:
        """One control tick. Every call is a tick, held or not: a chunk in flight during a hold arrives
        that many ticks late and must start that many actions further on."""
        tick = self.executor.tick
        status = self._tick(obs, stamps)
        if self.executor.tick == tick:  # held before taking an action from the queue
            self.executor.skip()
        return status

    def _rebase(self, measured: np.ndarray | None) -> str:
        """If the last command is beyond the gap bound from the measured joints, drop it and the plan: the
        arm is not where the plan thought. Returns why ("" when it is near)."""
        if measured is None or self.last_command is None:
            return ""
        far = self.safety.far(self.last_command, measured)
        if not far.any():
            return ""
        gap = self.safety.gap(self.last_command, measured)
        worst = int(np.argmax(np.where(far, gap, -1.0)))
        self.rebases += 1
        self.last_command = None
        self.executor.drop_queue(in_flight=True)
        return (f"approaching a new plan from the measured joints: the last command was {gap[worst]:.3f} from "
                f"{self.safety.names[worst]} (bound {self.safety.max_gap[worst]:.3f})")

    def _estop_edges(self, measured: np.ndarray | None) -> None:
        """Raised: hold the joints measured now. Released: start from the measured joints."""
        estopped = self.watchdog is not None and self.watchdog.estopped
        if estopped and not self._estop_held and measured is not None:
            self.last_command, self._estop_held = self.safety.at_measured(self.last_command, measured), True
        elif not estopped and self._estop_held:  # its plan was dropped when it was raised
            self.last_command, self._estop_held = self.safety.at_measured(self.last_command, measured), False

    def _tick(self, obs: dict, stamps: dict[str, float] | None) -> LoopStatus:
        measured, problem = self.safety.hold_state(obs.get(OBS_STATE))
        self._estop_edges(measured)
        approaching = self._rebase(measured)
        if self.watchdog is not None:
            reason = self.watchdog.check_inputs(stamps or {})
            if reason:  # after an e-stop nothing planned before it is executed; a late chunk after stale
                # inputs is (it starts at the current tick's action, as any late chunk)
                return self._hold(measured, reason, plan_invalid=self.watchdog.estopped, approaching=approaching)
        if problem:  # neither a hold target nor an observation worth asking the policy about
            return self._hold(None, problem)
        status = self._plan_tick(obs, measured)
        status.approaching = approaching
        return status

    def _plan_tick(self, obs: dict, measured: np.ndarray) -> LoopStatus:
        raw = self.executor.poll(obs)  # keeps asking while holding, so the loop resumes by itself
        status = {"new_chunk": raw is not None}
        if self.executor.last_error is not None:
            return self._hold(measured, f"policy failed: {self.executor.last_error}")
        if raw is not None:
            safe, report = self.safety.check(raw, measured, self.last_command)
            status["interventions"] = report.interventions
            if safe is None:
                return self._hold(measured, f"chunk rejected: {report.reason}", rejected=True, **status)
            if self.watchdog is not None:
                self.watchdog.inference_ok()
            self.executor.enqueue(safe)
        if self.watchdog is not None:
            reason = self.watchdog.check_policy()
            if reason:
                return self._hold(measured, reason, **status)
        action = self.executor.pop()
        if action is None:
            reason = "waiting for the policy" if self.executor.busy else "no action queued"
            return self._hold(measured, reason, **status)
        action, _ = self.safety.limit_tick(action, self.last_command, measured)
        self.last_command = action
        return LoopStatus(action.astype(np.float32), **status)
