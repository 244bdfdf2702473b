"""`vla bench planner`: flat policy vs planner (System-1, System-2), and re-planning after a
perturbation, on the multi-step tasks; plus the planner's accuracy on held-out seeds.

Arms (same seeds for all):
- `flat`: the goal instruction goes straight to the executor;
- `system1` / `system2`: the planner's subtasks go to the executor, re-planning on;
- `perturbed_no_replan` / `perturbed_replan` (System-2): a few ticks after the first subtask is
  done, its cube is moved elsewhere on the table (someone undid it); with and without re-planning.

The executor is the action policy (a VLA checkpoint) or `scripted-skills`, the scripted skills
that execute a named subtask: the latter isolates the planner from the action head's own failures.
Held-out accuracy (seeds the planner never trained on, System-1): plan exact match (whole text,
and subtasks only), next-state prediction and scene description exact match, critic ranking of
the true final state against a plan with one step left out, and latencies.
"""

from __future__ import annotations

import platform
import time
from collections.abc import Callable
from typing import Any

import numpy as np
import torch
from tqdm import tqdm

from sim.tabletop.experts import ScriptedExpert
from sim.tabletop.tasks import free_spot
from vla.evaluate import EpisodeResult, rollout, summarize
from vla.planner.plan import Plan, PlanFormatError, PlanStep, apply_change, state_change
from vla.planner.planner import Planner
from vla.planner.policy import PlannedPolicy

ARMS = ("flat", "system1", "system2", "perturbed_no_replan", "perturbed_replan")
PERTURB_AFTER = 12  # ticks after the first subtask is done: the plan has moved on to the next one


def _planned_episode(env, policy, seed: int, perturb: bool) -> dict[str, Any]:
    """One episode through `rollout`; with `perturb`, the first subtask's cube is moved elsewhere
    `PERTURB_AFTER` ticks after that subtask is first done."""
    rng = np.random.default_rng(seed)
    state: dict[str, Any] = {"done_at": None, "perturbed": False}  # done_at: the tick it was first done

    def intervene(steps: int, env, loop) -> dict | None:
        task = env.unwrapped
        if not perturb or state["perturbed"] or not task.episode.progress(task.scene)[0]:
            return None
        state["done_at"] = state["done_at"] or steps
        if steps - state["done_at"] < PERTURB_AFTER:
            return None
        state["perturbed"] = True
        color = task.episode.subtasks[0].target
        return task.displace(color, free_spot(task.scene, color, rng))

    result = rollout(env, policy, seed, intervene=intervene)
    task = env.unwrapped
    return {"success": result.success, "steps": result.steps, "perturbed": state["perturbed"],
            "subtasks_done": int(sum(task.episode.progress(task.scene)))}


def run_arm(arm: str, tasks: list[str], episodes: int, seed: int, make_env: Callable, make_policy: Callable,
            planner: Planner | None, progress: bool = True) -> dict[str, Any]:
    out: dict[str, Any] = {"tasks": {}}
    everything, replans, plan_s, describe_s = [], [], [], []
    bar = tqdm(total=episodes * len(tasks), desc=arm, unit="ep", disable=not progress)
    for task in tasks:
        env = make_env(task)
        executor = make_policy(env)
        policy = executor
        if arm != "flat":
            # Re-planning from the middle of a task is where single greedy plans go wrong most:
            # the perturbed arms plan with System-2, with and without re-planning.
            planner.system = "system1" if arm == "system1" else "system2"
            policy = PlannedPolicy(planner, executor, replan=arm != "perturbed_no_replan")
        results = []
        for i in range(episodes):
            if planner is not None:
                planner.reseed(seed + i)  # each arm's episode i samples the same way, whatever ran before
            r = _planned_episode(env, policy, seed + i, perturb=arm.startswith("perturbed"))
            results.append(EpisodeResult(task, seed + i, "", r["success"], r["steps"]))
            if isinstance(policy, PlannedPolicy):
                replans.append(policy.trace.replans)
                plan_s += policy.trace.plan_seconds
                describe_s += policy.trace.describe_seconds
            bar.update()
        env.close()
        out["tasks"][task] = summarize(results)
        everything += results
    bar.close()
    out.update(summarize(everything))
    if replans:
        out["mean_replans"] = float(np.mean(replans))
        out["plan_ms_median"] = float(np.median(plan_s) * 1e3) if plan_s else None
        out["describe_ms_median"] = float(np.median(describe_s) * 1e3) if describe_s else None
    return out


def _truth(env, seed: int, settle: int = 3) -> tuple[dict, str, list[dict], list[str], Plan]:
    """The expert's episode on `seed`: first observation, instruction, observations and
    descriptions at each subtask start and at the end, and the true plan."""
    expert = ScriptedExpert(env)
    obs, info = env.reset(seed=seed)
    expert.reset()
    first, instruction, subtasks = obs, info["task"], info["subtasks"]
    seen, frames, states = -1, [], []
    left = None
    while True:
        if info["subtask_index"] > seen and info["subtask_index"] < len(subtasks):
            seen = info["subtask_index"]
            frames.append(obs)
            states.append(info["scene_description"])
        obs, _, terminated, truncated, info = env.step(expert.predict_chunk(obs)[0])
        if left is not None:
            left -= 1
            if left == 0:
                break
        elif terminated or truncated:
            if not info["success"]:
                raise RuntimeError(f"the expert failed seed {seed}")
            left = settle
    frames.append(obs)
    states.append(info["scene_description"])
    steps = tuple(PlanStep(s, state_change(a, b)) for s, a, b in zip(subtasks, states[:-1], states[1:], strict=True))
    return first, instruction, frames, states, Plan(states[-1], steps)


def heldout(planner: Planner, tasks: list[str], episodes: int, seed: int, make_env: Callable,
            progress: bool = True) -> dict[str, Any]:
    planner.system = "system1"
    per_task = {}
    lat_plan, lat_plan2, lat_desc = [], [], []
    for task in tasks:
        env = make_env(task)
        n = {"plan_exact": 0, "subtasks_exact": 0, "goal_exact": 0, "next_state_exact": 0, "next_states": 0,
             "describe_exact": 0, "describes": 0, "critic_correct": 0, "critic_pairs": 0}
        for i in tqdm(range(episodes), desc=f"held-out {task}", disable=not progress):
            first, instruction, frames, states, truth = _truth(env, seed + i)
            planner.system = "system1"
            result = planner.plan(first, instruction)
            lat_plan.append(result.seconds)
            if result.plan is not None:
                n["plan_exact"] += result.plan.text() == truth.text()
                n["subtasks_exact"] += result.plan.subtasks == truth.subtasks
                n["goal_exact"] += result.plan.goal == truth.goal
            planner.system = "system2"
            lat_plan2.append(planner.plan(first, instruction, start=result.start).seconds)
            for k, step in enumerate(truth.steps):
                try:
                    n["next_state_exact"] += planner.predict(states[k], step.subtask) == states[k + 1]
                except PlanFormatError:  # not even a state: wrong
                    pass
                n["next_states"] += 1
            for obs, state in zip(frames, states, strict=True):
                t0 = time.perf_counter()
                n["describe_exact"] += planner.describe(obs) == state
                lat_desc.append(time.perf_counter() - t0)
                n["describes"] += 1
            for drop in range(len(truth.steps)):
                partial = states[0]
                for k, step in enumerate(truth.steps):
                    if k != drop:
                        partial = apply_change(partial, step.change)
                if partial == truth.goal:
                    continue
                with torch.no_grad():
                    good, bad = planner.model.cost([truth.goal] * 2, [truth.goal, partial]).tolist()
                n["critic_correct"] += good < bad
                n["critic_pairs"] += 1
        env.close()
        per_task[task] = {
            "episodes": episodes,
            "plan_exact_match": n["plan_exact"] / episodes,
            "subtasks_exact_match": n["subtasks_exact"] / episodes,
            "goal_exact_match": n["goal_exact"] / episodes,
            "next_state_accuracy": n["next_state_exact"] / max(1, n["next_states"]),
            "describe_accuracy": n["describe_exact"] / max(1, n["describes"]),
            "critic_ranking_accuracy": n["critic_correct"] / max(1, n["critic_pairs"]),
        }
    planner.system = "system1"
    keys = [k for k in next(iter(per_task.values())) if k != "episodes"]
    return {
        "seed": seed, "tasks": per_task,
        **{k: float(np.mean([v[k] for v in per_task.values()])) for k in keys},
        "latency_ms": {"plan_system1_median": float(np.median(lat_plan) * 1e3),
                       f"plan_system2_{planner.candidates}_candidates_median": float(np.median(lat_plan2) * 1e3),
                       "describe_median": float(np.median(lat_desc) * 1e3)},
    }


def bench_planner(planner_dir: str, executor: str, make_env: Callable, make_policy: Callable, tasks: list[str],
                  episodes: int, seed: int = 0, candidates: int = 4, arms: list[str] | None = None,
                  heldout_episodes: int = 20, heldout_seed: int = 5000, progress: bool = True) -> dict[str, Any]:
    arms = arms or list(ARMS)
    unknown = [a for a in arms if a not in ARMS]
    if unknown:
        raise ValueError(f"unknown arm(s) {unknown}; expected some of {list(ARMS)}")
    planner = Planner.from_pretrained(planner_dir, device="cpu", candidates=candidates, seed=seed)
    started = time.perf_counter()
    report: dict[str, Any] = {
        "planner": planner_dir, "executor": executor, "tasks": tasks, "episodes_per_task": episodes, "seed": seed,
        "system2_candidates": candidates, "perturbation": f"first subtask's cube moved {PERTURB_AFTER} ticks after it "
                                                          "was done",
        "machine": f"{platform.machine()}, {torch.get_num_threads()} threads, CPU",
    }
    if heldout_episodes:
        report["heldout"] = heldout(planner, tasks, heldout_episodes, heldout_seed, make_env, progress)
    for arm in arms:
        report[arm] = run_arm(arm, tasks, episodes, seed, make_env, make_policy, planner, progress)
    report["wall_time_s"] = round(time.perf_counter() - started, 1)
    return report
