"""`vla bench events`: when the event trigger fires, scene by scene, for each trigger variant.

The trigger should fire at once when something the task is about moves, and not when only the arm
moves, the lights change or nothing happens. Each case below starts an episode of a single-step task,
lets the policy infer once (its first chunk), then changes the scene and asks the policy again; the
arm is held where it is or driven by the scripted expert, and the policy's actions are never executed,
so every variant sees the same frames.

- `named_moved`: the instruction's cube moved to a free spot, the arm still (at home).
- `other_moved`: another cube moved likewise.
- `exposure`: every camera's frame 15% darker (a camera's auto-exposure; darker, so nothing clips).
- `light_dimmed`: the scene's lights' diffuse part 20% dimmer, rendered (shading changes by the surface's
  angle to the light: not one factor over the image).
- `arm_moving`: the expert drives the arm for `--ticks` ticks; nothing else moves. Reported per tick: the
  share of ticks the trigger fired (an event or a large change) and the share that inferred at all.
- `named_moved_arm_moving`: the expert drives the arm `--move-after` ticks, then the named cube is moved.

"Fired" means the policy inferred before its chunk or its schedule ran out: the stats' `reason` is `event`
(fired patches off the arm, relevance-weighted) or `change` (the share of fired patches). For moves, the
report gives the share of cases that fired on the first frame after the move and within 2 frames.
"""

from __future__ import annotations

import platform
import time
from dataclasses import replace
from pathlib import Path
from typing import Any

import numpy as np
import torch

import sim
from sim.tabletop.experts import ScriptedExpert
from sim.tabletop.scene import COLORS
from sim.tabletop.tasks import free_spot
from vla.control import SafetyFilter
from vla.model.vla import VLAModel
from vla.robot import load_robot_config
from vla.sparsity.arm import ArmMask
from vla.sparsity.policy import SparseVLAPolicy, SparsityConfig, load_arm_mask, load_sparsity_config
from vla.types import OBS_STATE

CASES = ("named_moved", "other_moved", "exposure", "light_dimmed", "arm_moving", "named_moved_arm_moving")
EXPOSURE = 0.85
DIMMED = 0.8
FIRED = ("event", "change")


def _variants(base: SparsityConfig, mask: ArmMask | None) -> dict[str, tuple[SparsityConfig, ArmMask | None]]:
    """The trigger without an arm mask (the share of fired patches alone), and with it: uniform weights, and
    the policy's saliency at the config's `event_patches` and at twice that (the named cube weighs more)."""
    out = {"share_only": (base, None)}
    if mask is not None and base.event_patches is not None:
        out["arm_discount_uniform"] = (replace(base, relevance="uniform"), mask)
        out["arm_discount_saliency"] = (replace(base, relevance="saliency"), mask)
        out["arm_discount_saliency_x2"] = (replace(base, relevance="saliency", event_patches=2 * base.event_patches),
                                           mask)
    return out


def _exposed(obs: dict[str, Any], factor: float = EXPOSURE) -> dict[str, Any]:
    out = dict(obs)
    for key, value in obs.items():
        if key.startswith("observation.images."):
            out[key] = np.clip(value.astype(np.float32) * factor, 0, 255).astype(np.uint8)
    return out


def _fired(policy: SparseVLAPolicy) -> bool:
    return policy.step_stats[-1]["reason"] in FIRED


def _case(policy: SparseVLAPolicy, env, seed: int, case: str, ticks: int, move_after: int) -> dict[str, Any]:
    """One case on one seed: whether the trigger fired on the first frame after the change and within 2
    frames, or (`arm_moving`) the shares of ticks that fired and that inferred."""
    obs, _ = env.reset(seed=seed)
    scene = env.unwrapped.scene
    rng = np.random.default_rng([seed, 0xE7])
    policy.reset()
    policy.predict_chunk(obs)  # the first chunk: every patch encoded
    hold = SafetyFilter(env.unwrapped.robot)
    hold_action = hold.hold_action(hold.hold_state(obs[OBS_STATE])[0], None)
    named = env.unwrapped.episode.subtasks[0].target
    expert = ScriptedExpert(env)
    expert.reset()
    if case in ("arm_moving", "named_moved_arm_moving"):
        steps = ticks if case == "arm_moving" else move_after
        first = len(policy.step_stats)
        for _ in range(steps):
            obs, *_ = env.step(expert.predict_chunk(obs)[0])
            policy.predict_chunk(obs)
        if case == "arm_moving":
            stats = list(policy.step_stats)[first:]
            return {"fired": float(np.mean([s["reason"] in FIRED for s in stats])),
                    "inferred": float(np.mean([s["inference"] for s in stats])),
                    "ms": float(np.mean([s["ms"] for s in stats]))}
        moved = named
    else:
        obs, *_ = env.step(hold_action)  # one still tick: the arm settles, the policy serves from its queue
        policy.predict_chunk(obs)
        moved = named if case == "named_moved" else next(c for c in COLORS if c != named)
    model = scene.model
    if case == "exposure":
        obs = _exposed(obs)
    elif case == "light_dimmed":
        model.light_diffuse[:] *= DIMMED
        model.vis.headlight.diffuse[:] *= DIMMED
        obs = env.unwrapped.current_observation()
    else:
        obs = env.unwrapped.displace(moved, free_spot(scene, moved, rng))
    policy.predict_chunk(obs)
    at_once = _fired(policy)
    within = at_once
    for _ in range(2):
        if within:
            break
        obs, *_ = env.step(hold_action if case != "named_moved_arm_moving" else expert.predict_chunk(obs)[0])
        policy.predict_chunk(_exposed(obs) if case == "exposure" else obs)
        within = _fired(policy)
    if case == "light_dimmed":
        model.light_diffuse[:] /= DIMMED
        model.vis.headlight.diffuse[:] /= DIMMED
    return {"at_once": at_once, "within_2": within}


def bench_events(policy_dir: str | Path, tasks: list[str], seeds: int = 10, seed: int = 0,
                 config: str | Path | None = None, ticks: int = 30, move_after: int = 12,
                 progress: bool = True) -> dict[str, Any]:
    model = VLAModel.from_pretrained(policy_dir, device="cpu")
    base = load_sparsity_config(config)
    mask = load_arm_mask(base, policy_dir)
    world = load_robot_config().world_cameras
    started = time.perf_counter()
    report: dict[str, Any] = {
        "policy": str(policy_dir), "tasks": tasks, "seeds_per_task": seeds, "seed": seed,
        "ticks": ticks, "move_after": move_after, "arm_mask_loaded": mask is not None,
        "machine": f"{platform.machine()}, {torch.get_num_threads()} torch threads",
        "sparsity_config": base.__dict__, "variants": {}}
    for name, (cfg, arm) in _variants(base, mask).items():
        policy = SparseVLAPolicy(model, cfg, world_cameras=world, arm_mask=arm)
        rows: dict[str, list[dict[str, Any]]] = {case: [] for case in CASES}
        for task in tasks:
            env = sim.make_env(task)
            for i in range(seeds):
                for case in CASES:
                    rows[case].append(_case(policy, env, seed + i, case, ticks, move_after))
            env.close()
            if progress:
                print(f"events {name}: {task} done ({time.perf_counter() - started:.0f} s)", flush=True)
        summary: dict[str, Any] = {}
        for case, r in rows.items():
            if case == "arm_moving":
                summary[case] = {k: round(float(np.mean([x[k] for x in r])), 4) for k in ("fired", "inferred", "ms")}
            else:
                summary[case] = {"fired_at_once": round(float(np.mean([x["at_once"] for x in r])), 4),
                                 "fired_within_2": round(float(np.mean([x["within_2"] for x in r])), 4),
                                 "cases": len(r)}
        report["variants"][name] = summary
    report["wall_time_s"] = round(time.perf_counter() - started, 1)
    return report
