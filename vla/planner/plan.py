"""Plans and scene states as text: the planner's whole interface.

A scene state is a description made of clauses, one per object, each "<subject> is <relation>"
and joined by "; " ("the red cube is in the bowl; the green cube is on the table."). A state
change is the clauses that differ after a subtask. A plan, as the model writes it (VLWM-style:
the goal stated as a final state, then subtasks interleaved with the changes they cause):

    goal: <final state> plan: <subtask> => <change> | <subtask> => <change>

Nothing here knows the simulator: any describer that writes "subject is ..." clauses works.
"""

from __future__ import annotations

from dataclasses import dataclass

GOAL, PLAN, STEP_SEP, CHANGE_SEP = "goal:", "plan:", " | ", " => "


class PlanFormatError(ValueError):
    """Generated text that is not a plan in the format above; the message says what is wrong."""


def _norm(text: str) -> str:
    return " ".join(text.split())


def clauses(state: str) -> dict[str, str]:
    """'a is x; b is y.' -> {'a': 'a is x', 'b': 'b is y'} (in order)."""
    out: dict[str, str] = {}
    for part in _norm(state).rstrip(".").split(";"):
        part = part.strip()
        if not part:
            continue
        subject, sep, _ = part.partition(" is ")
        if not sep:
            raise PlanFormatError(f"scene clause {part!r} has no ' is ': expected '<subject> is <relation>'")
        out[subject] = part
    return out


def join_clauses(parts: list[str]) -> str:
    return "; ".join(parts) + "." if parts else ""


def apply_change(state: str, change: str) -> str:
    """The state after `change`: its clauses replace those of the same subjects; new subjects append."""
    merged = clauses(state)
    merged.update(clauses(change))
    return join_clauses(list(merged.values()))


def state_change(before: str, after: str) -> str:
    """The clauses of `after` that differ from `before`, "; "-joined, without the final period."""
    old = clauses(before)
    return "; ".join(c for s, c in clauses(after).items() if old.get(s) != c)


def differing_subjects(a: str, b: str) -> set[str]:
    ca, cb = clauses(a), clauses(b)
    return {s for s in ca.keys() | cb.keys() if ca.get(s) != cb.get(s)}


def satisfies(state: str, change: str) -> bool:
    """Every clause of `change` holds in `state`."""
    have = clauses(state)
    want = clauses(change)
    return bool(want) and all(have.get(s) == c for s, c in want.items())


@dataclass(frozen=True)
class PlanStep:
    subtask: str
    change: str  # the predicted state change, clauses "; "-joined


@dataclass(frozen=True)
class Plan:
    goal: str  # the expected final state
    steps: tuple[PlanStep, ...]

    @property
    def subtasks(self) -> list[str]:
        return [s.subtask for s in self.steps]

    def text(self) -> str:
        steps = STEP_SEP.join(f"{_norm(s.subtask)}{CHANGE_SEP}{_norm(s.change)}" for s in self.steps)
        return f"{GOAL} {_norm(self.goal)} {PLAN} {steps}"

    def states(self, start: str) -> list[str]:
        """Predicted states after each step, from `start` (the perceived current scene)."""
        out, state = [], start
        for step in self.steps:
            state = apply_change(state, step.change)
            out.append(state)
        return out


def parse_plan(text: str) -> Plan:
    """Inverse of `Plan.text`; raises PlanFormatError naming what is missing or malformed."""
    text = _norm(text)
    if not text.startswith(GOAL):
        raise PlanFormatError(f"plan text must start with {GOAL!r}; got {text[:60]!r}")
    goal, sep, rest = text[len(GOAL):].partition(f" {PLAN}")
    if not sep:
        raise PlanFormatError(f"plan text has no {PLAN!r} after the goal: {text[:80]!r}")
    goal, rest = goal.strip(), rest.strip()
    if not goal:
        raise PlanFormatError("plan has an empty goal")
    if not rest:
        raise PlanFormatError("plan has no steps after 'plan:'")
    steps = []
    for i, part in enumerate(rest.split(STEP_SEP.strip())):
        subtask, sep, change = part.strip().partition(CHANGE_SEP.strip())
        subtask, change = subtask.strip(), change.strip()
        if not sep or not subtask or not change:
            raise PlanFormatError(f"plan step {i} {part.strip()!r}: expected '<subtask> => <state change>'")
        clauses(change)  # validates the clauses
        steps.append(PlanStep(subtask, change))
    clauses(goal)
    return Plan(goal, tuple(steps))
