"""The control loop: watchdog -> chunk executor -> safety filter -> one safe action per tick.

A hold is the action the safety filter says holds the robot still (`SafetyFilter.hold_action`, by
what the robot config declares each action to be): a joint position holds the last command, or
before the first one the measured joint, and only from a measured state the safety filter accepts
(finite, within the bounds): a NaN read at start-up would otherwise become the hold target and,
through it, every later command. A delta holds with 0 (never with the measured state, which is not
an action at all) and an absolute setpoint (a gripper command) holds the last command, else the
config's `hold` value. With no hold action the tick's action is None: send nothing.
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


class ControlLoop:
    def __init__(self, policy: Policy, safety: SafetyFilter, refill_threshold: int = 0, blend: int = 0,
                 asynchronous: bool = False, watchdog: Watchdog | None = None):
        self.policy = policy
        self.safety = safety
        self.watchdog = watchdog
        self.executor = ChunkExecutor(policy.predict_chunk, refill_threshold, blend, asynchronous)
        self.last_command: np.ndarray | None = None
        self.holds = 0

    def reset(self) -> None:
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

    def _tick(self, obs: dict, stamps: dict[str, float] | None) -> LoopStatus:
        measured, problem = self.safety.hold_state(obs.get(OBS_STATE))
        if self.watchdog is not None:
            reason = self.watchdog.check_inputs(stamps or {})
            if reason:  # after an e-stop nothing planned before it is executed; a late chunk after stale
                # inputs is (it starts at the current tick's action, as any late chunk)
                return self._hold(measured, reason, plan_invalid=self.watchdog.estopped)
        if problem:  # neither a hold target nor an observation worth asking the policy about
            return self._hold(None, problem)
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
        action, _ = self.safety.limit_tick(action, self.last_command)
        self.last_command = action
        return LoopStatus(action.astype(np.float32), **status)
