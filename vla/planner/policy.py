"""A policy driven by a planner's subtasks: the System-1/System-2 loop around the action head.

At the start of an episode the planner turns the goal instruction into a plan. Every
`check_every` control ticks the planner describes the scene from the cameras; each step whose
predicted change now holds is done, and the policy is handed the next subtask as its
instruction. When objects that the current subtask should not touch are no longer where the
plan expects them (seen the same way `patience` checks in a row), or the plan is finished but
the goal does not hold, the planner re-plans from what it sees (if `replan`). A new plan is
taken only if its own predicted changes lead from the seen scene to its goal. The planner only ever gives
text; the actions are the wrapped policy's. numpy only: the planner is any object with
`plan(obs, instruction) -> PlanResult` and `describe(obs) -> str`.
"""

from __future__ import annotations

import time
from dataclasses import dataclass, field
from typing import Any

import numpy as np

from vla.planner.plan import PlanFormatError, clauses, differing_subjects, satisfies
from vla.types import TASK, Observation


@dataclass
class PlanEvent:
    tick: int
    kind: str  # plan | replan | advance | diverged | failed
    detail: str


@dataclass
class PlanTrace:
    events: list[PlanEvent] = field(default_factory=list)
    plan_seconds: list[float] = field(default_factory=list)
    describe_seconds: list[float] = field(default_factory=list)
    replans: int = 0


class PlannedPolicy:
    def __init__(self, planner, policy, replan: bool = True, check_every: int = 5, patience: int = 3,
                 max_replans: int = 4):
        if check_every < 1 or patience < 1 or max_replans < 0:
            raise ValueError(f"check_every={check_every}, patience={patience}, max_replans={max_replans}; "
                             "expected check_every >= 1, patience >= 1, max_replans >= 0")
        self.planner, self.policy = planner, policy
        self.replan, self.check_every, self.patience, self.max_replans = replan, check_every, patience, max_replans
        self.metadata: dict[str, Any] = {**policy.metadata, "name": f"{policy.metadata.get('name', 'policy')}+planner",
                                         "planner": getattr(planner, "system", "?"), "replan": replan}
        self.reset()

    def reset(self) -> None:
        self.policy.reset()
        self.instruction: str | None = None
        self.plan = None
        self.states: list[str] = []
        self.index = 0
        self.tick = self.since_check = self.off_count = 0
        self.off_seen: tuple | None = None
        self.trace = PlanTrace()

    @property
    def subtask(self) -> str | None:
        """The subtask the policy is working on (the last one once the plan is done)."""
        if self.plan is None:
            return None
        return self.plan.steps[min(self.index, len(self.plan.steps) - 1)].subtask

    def _make_plan(self, obs: Observation, kind: str, start: str | None = None) -> None:
        t0 = time.perf_counter()
        result = self.planner.plan(obs, self.instruction, start=start)
        self.trace.plan_seconds.append(time.perf_counter() - t0)
        if result.plan is None:
            self.trace.events.append(PlanEvent(self.tick, "failed", result.error or "no plan"))
            return  # keep following the old plan, if any, rather than nothing
        try:
            states = [result.start, *result.plan.states(result.start)]
        except PlanFormatError:  # the scene was not read: no expectations to check against
            states = [None] * (len(result.plan.steps) + 1)
        if self.plan is not None and (states[-1] is None or not satisfies(states[-1], result.plan.goal)):
            # A new plan must, by its own predictions, get from what is seen to its goal.
            self.trace.events.append(PlanEvent(self.tick, "rejected", result.plan.text()))
            return
        self.plan, self.states, self.index, self.off_count, self.off_seen = result.plan, states, 0, 0, None
        self.trace.events.append(PlanEvent(self.tick, kind, result.plan.text()))

    def _check(self, obs: Observation) -> None:
        t0 = time.perf_counter()
        seen = self.planner.describe(obs)
        self.trace.describe_seconds.append(time.perf_counter() - t0)
        try:
            clauses(seen)
        except PlanFormatError as exc:  # an unreadable description tells nothing: check again later
            self.trace.events.append(PlanEvent(self.tick, "unreadable", str(exc)))
            return
        steps = self.plan.steps
        while self.index < len(steps) and satisfies(seen, steps[self.index].change):
            self.trace.events.append(PlanEvent(self.tick, "advance", steps[self.index].subtask))
            self.index += 1
            self.off_count = 0
        if self.index < len(steps):
            touched = set(clauses(steps[self.index].change))
            expected = self.states[self.index]
            off = set() if expected is None else differing_subjects(seen, expected) - touched
        else:  # plan done: everything should look like the goal
            off = differing_subjects(seen, self.plan.goal) & set(clauses(self.plan.goal))
        # The same objects seen the same wrong way, `patience` checks in a row: one misread frame
        # (an arm in front of a cube) is not a divergence.
        evidence = tuple(sorted((subject, clauses(seen).get(subject, "")) for subject in off))
        self.off_count = self.off_count + 1 if off and evidence == self.off_seen else int(bool(off))
        self.off_seen = evidence if off else None
        if self.off_count >= self.patience:
            self.trace.events.append(PlanEvent(self.tick, "diverged", f"{sorted(off)}: saw {seen!r}"))
            self.off_count = 0
            if self.replan and self.trace.replans < self.max_replans:
                self.trace.replans += 1
                self._make_plan(obs, "replan", start=seen)

    def predict_chunk(self, obs: Observation) -> np.ndarray:
        if self.instruction is None:
            self.instruction = obs[TASK]
            self._make_plan(obs, "plan")
        elif self.since_check >= self.check_every:
            self.since_check = 0
            if self.plan is not None:
                self._check(obs)
            elif self.trace.replans < self.max_replans:  # no usable plan yet: try again
                self.trace.replans += 1
                self._make_plan(obs, "replan")
        # Without any plan the goal goes to the policy as it is (the flat fallback).
        chunk = self.policy.predict_chunk({**obs, TASK: self.subtask or self.instruction})
        self.tick += len(chunk)
        self.since_check += len(chunk)
        return chunk
