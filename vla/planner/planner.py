"""The planner at run time: perceive, plan (System-1 or System-2), predict, judge.

- `describe(obs)`: the scene in words, from the camera images alone.
- `plan(obs, instruction)`: System-1 decodes one plan greedily. System-2 keeps that plan as
  candidate 0, samples more continuations of the same goal, rolls each candidate's subtasks
  through the world model from the perceived scene, and keeps the candidate whose predicted
  final state the critic finds closest to the goal (ties go to the earlier candidate, so
  System-2 with one candidate is System-1).
"""

from __future__ import annotations

import time
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
import torch

from vla.model.inputs import observation_batch
from vla.planner.model import PlannerModel, describe_prompt, plan_prompt, world_prompt
from vla.planner.plan import GOAL, PLAN, Plan, PlanFormatError, apply_change, parse_plan
from vla.types import Observation

SYSTEMS = ("system1", "system2")


@dataclass
class PlanResult:
    plan: Plan | None  # None when no candidate parsed
    start: str  # the perceived scene the plan starts from
    candidates: list[str] = field(default_factory=list)  # raw texts
    costs: list[float] = field(default_factory=list)  # System-2: critic cost per candidate (inf: unparsable)
    chosen: int = 0
    seconds: float = 0.0
    error: str | None = None


class Planner:
    def __init__(self, model: PlannerModel, system: str = "system1", candidates: int = 4, seed: int = 0):
        if system not in SYSTEMS:
            raise ValueError(f"system={system!r}; expected one of {SYSTEMS}")
        if candidates < 1:
            raise ValueError(f"candidates={candidates}; expected at least 1")
        self.model = model.eval()
        self.system = system
        self.candidates = candidates
        self.generator = torch.Generator().manual_seed(seed)
        self.cameras = list(model.vla.config.cameras)

    @classmethod
    def from_pretrained(cls, path: str | Path, device: str | None = None, **kw) -> Planner:
        device = device or ("cuda" if torch.cuda.is_available() else "cpu")
        return cls(PlannerModel.from_pretrained(path, device=device), **kw)

    def _images(self, obs: Observation) -> torch.Tensor:
        """(1, N, 3, S, S) camera images on the model's device, through the one way in."""
        vla = self.model.vla
        return observation_batch(obs, vla.config, vla.vision_size, self.model.device).images

    def describe(self, obs: Observation) -> str:
        return self.model.generate("describe", [describe_prompt()], self._images(obs))[0]

    def predict(self, state: str, subtask: str) -> str:
        """World model: the state after `subtask` (its predicted change applied to `state`)."""
        return apply_change(state, self.model.generate("world", [world_prompt(state, subtask)])[0])

    def reseed(self, seed: int) -> None:
        """System-2's sampling restarts from `seed` (an evaluation seeds it per episode)."""
        self.generator.manual_seed(seed)

    def plan(self, obs: Observation, instruction: str, start: str | None = None) -> PlanResult:
        t0 = time.perf_counter()
        images = self._images(obs)
        start = start if start is not None else self.describe(obs)
        greedy = self.model.generate("plan", [plan_prompt(instruction)], images)[0]
        texts = [greedy]
        if self.system == "system2" and self.candidates > 1:
            goal, sep, _ = greedy.partition(f" {PLAN}")
            forced = f"{goal}{sep}" if sep and goal.startswith(GOAL) else None
            n = self.candidates - 1
            texts += self.model.generate("plan", [plan_prompt(instruction)] * n, images.expand(n, -1, -1, -1, -1),
                                         sample=True, generator=self.generator,
                                         forced=[forced] * n if forced else None)
        plans: list[Plan | None] = []
        errors = []
        for t in texts:
            try:
                plans.append(parse_plan(t))
            except PlanFormatError as exc:
                plans.append(None)
                errors.append(str(exc))
        result = PlanResult(None, start, texts)
        if self.system == "system1" or len(texts) == 1:
            result.plan = plans[0]
        else:
            result.costs = self._score(plans, start)
            result.chosen = int(np.argmin(result.costs))  # first minimum: candidate 0 wins ties
            result.plan = plans[result.chosen]
            if not np.isfinite(result.costs[result.chosen]):  # none could be scored: System-1's answer
                result.chosen, result.plan = 0, plans[0]
        if result.plan is None:
            result.error = errors[0] if errors else "no plan"
        result.seconds = time.perf_counter() - t0
        return result

    def _score(self, plans: list[Plan | None], start: str) -> list[float]:
        """Critic cost of each candidate's final state, rolled out through the world model."""
        live = [i for i, p in enumerate(plans) if p is not None]
        costs = [float("inf")] * len(plans)
        if not live:
            return costs
        states = {i: start for i in live}
        for k in range(max(len(plans[i].steps) for i in live)):
            todo = [i for i in live if k < len(plans[i].steps)]
            for i in todo:  # one at a time: a text too long for the model fails only its candidate
                try:
                    change = self.model.generate("world", [world_prompt(states[i], plans[i].steps[k].subtask)])[0]
                    states[i] = apply_change(states[i], change)
                except (PlanFormatError, ValueError):
                    live.remove(i)
        for i in live:  # each candidate against its own goal (the same one when the goal was forced)
            try:
                with torch.no_grad():
                    costs[i] = float(self.model.cost([plans[i].goal], [states[i]])[0])
            except ValueError:
                pass
        return costs
