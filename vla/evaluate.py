"""Rollouts and success reports: the one evaluation harness every policy goes through.

The harness is generic: it gets an env factory and a policy factory, so the same code scores
the scripted expert, a trained VLA or a LeRobot peer on the same seeds. Chunks are executed
one action per control tick; a new chunk is requested when the last one is used up.
"""

from __future__ import annotations

import json
import math
import time
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np

from vla.control import ControlLoop, SafetyFilter
from vla.types import OBS_STATE, Policy, image_key


def wilson_interval(successes: int, n: int, z: float = 1.96) -> tuple[float, float]:
    """95% Wilson score interval for a success rate (well-behaved at 0 and n)."""
    if n == 0:
        return (0.0, 1.0)
    p = successes / n
    denom = 1 + z * z / n
    centre = (p + z * z / (2 * n)) / denom
    half = z * math.sqrt(p * (1 - p) / n + z * z / (4 * n * n)) / denom
    return (max(0.0, centre - half), min(1.0, centre + half))


@dataclass
class EpisodeResult:
    task_id: str
    seed: int
    instruction: str
    success: bool
    steps: int


def rollout(env, policy: Policy, seed: int, frames: list | None = None,
            safety: SafetyFilter | None = None,
            intervene: Callable[[int, Any, ControlLoop], dict | None] | None = None) -> EpisodeResult:
    """Run one episode to success or time limit through the control loop (chunk executor and
    safety filter, synchronous). Appends video frames when `frames` is a list. `intervene(steps,
    env, loop)` runs after each step that did not end the episode; an observation it returns
    replaces the env's (someone moved something: a perturbation)."""
    obs, info = env.reset(seed=seed)
    loop = ControlLoop(policy, safety or SafetyFilter(env.unwrapped.robot))
    loop.reset()
    steps, success = 0, False
    while True:
        status = loop.step(obs)
        obs, _, terminated, truncated, info = env.step(status.action)
        steps += 1
        if frames is not None:
            frames.append(_video_frame(obs))
        if terminated or truncated:
            success = bool(info["success"])
            break
        if intervene is not None and (changed := intervene(steps, env, loop)) is not None:
            obs = changed
    return EpisodeResult(info["task_id"], seed, info["task"], success, steps)


def check_policy_fits(metadata: dict[str, Any], env) -> None:
    """Refuse, before any episode, a policy made for another robot: its cameras, the size of the state
    it reads and of the actions it returns must be the env's. (Without this a mismatch would surface as
    a policy error at every step, which the control loop answers by holding: every episode a silent fail.)"""
    robot, space = env.unwrapped.robot, env.observation_space.spaces
    task = getattr(env.unwrapped, "task_id", "?")
    problems = []
    cameras = metadata.get("cameras")
    if cameras is not None and sorted(cameras) != sorted(robot.camera_names):
        problems.append(f"cameras {list(cameras)}, the env has {robot.camera_names}")
    keys = list(metadata.get("state_keys") or [OBS_STATE])
    missing = [k for k in keys if k not in space]
    if missing:
        problems.append(f"it reads {missing}, which the env does not give")
    elif metadata.get("state_dim") is not None:
        size = sum(int(np.prod(space[k].shape)) for k in keys)
        if int(metadata["state_dim"]) != size:
            problems.append(f"a state of {metadata['state_dim']} values, the env gives {size} ({' + '.join(keys)})")
    if metadata.get("action_dim") is not None and int(metadata["action_dim"]) != robot.action_dim:
        problems.append(f"{metadata['action_dim']} action values, robot {robot.name!r} takes {robot.action_dim} "
                        f"({', '.join(robot.action_names)})")
    if problems:
        raise ValueError(f"policy {metadata.get('name')!r} does not fit task {task!r}: " + "; ".join(problems))


def _video_frame(obs: dict[str, Any]) -> np.ndarray:
    """All camera images side by side."""
    images = [v for k, v in obs.items() if k.startswith(image_key(""))]
    height = max(i.shape[0] for i in images)
    return np.concatenate([np.pad(i, ((0, height - i.shape[0]), (0, 0), (0, 0))) for i in images], axis=1)


def write_video(path: Path, frames: list[np.ndarray], fps: float) -> None:
    import imageio.v2 as imageio

    path.parent.mkdir(parents=True, exist_ok=True)
    # macro_block_size=1 keeps odd image sizes as they are instead of resizing with a warning.
    imageio.mimwrite(path, frames, fps=fps, macro_block_size=1)


def summarize(results: list[EpisodeResult]) -> dict[str, Any]:
    n = len(results)
    k = sum(r.success for r in results)
    lo, hi = wilson_interval(k, n)
    return {
        "episodes": n,
        "successes": k,
        "success_rate": k / n if n else 0.0,
        "ci95": [round(lo, 4), round(hi, 4)],
        "mean_steps": float(np.mean([r.steps for r in results])) if n else 0.0,
    }


def evaluate(
    policy_name: str,
    task_ids: list[str],
    make_env: Callable[[str], Any],
    make_policy: Callable[[Any], Policy],
    episodes: int,
    seed: int = 0,
    video_dir: Path | None = None,
    videos_per_task: int = 2,
    progress: bool = True,
) -> dict[str, Any]:
    """Score a policy on each task over `episodes` seeded episodes (seeds seed, seed+1, ...)."""
    from tqdm import tqdm

    if episodes < 1:
        raise ValueError(f"episodes={episodes}; expected at least 1")
    report: dict[str, Any] = {"policy": policy_name, "seed": seed, "tasks": {}}
    everything: list[EpisodeResult] = []
    start = time.perf_counter()
    bar = tqdm(total=episodes * len(task_ids), desc=f"eval {policy_name}", unit="ep", disable=not progress)
    for task_id in task_ids:
        env = make_env(task_id)
        policy = make_policy(env)
        check_policy_fits(policy.metadata, env)
        safety = SafetyFilter(env.unwrapped.robot)
        results = []
        for i in range(episodes):
            frames = [] if video_dir is not None and i < videos_per_task else None
            result = rollout(env, policy, seed + i, frames, safety)
            results.append(result)
            if frames:
                tag = "success" if result.success else "failure"
                write_video(Path(video_dir) / f"{task_id}_seed{seed + i}_{tag}.mp4", frames,
                            env.metadata.get("render_fps", 10))
            bar.set_postfix(task=task_id, success=f"{sum(r.success for r in results)}/{len(results)}")
            bar.update()
        env.close()
        report["tasks"][task_id] = summarize(results)
        report.setdefault("safety", {})[task_id] = safety.summary()
        everything += results
    bar.close()
    overall = summarize(everything)
    report["overall"] = {key: overall[key] for key in ("episodes", "successes", "success_rate")}
    report["wall_time_s"] = round(time.perf_counter() - start, 2)
    report["failures"] = [
        {"task_id": r.task_id, "seed": r.seed, "instruction": r.instruction} for r in everything if not r.success
    ]
    return report


def write_report(report: dict[str, Any], path: str | Path | None = None, quiet: bool = False) -> None:
    """Print the report as JSON (unless `quiet`) and, when `path` is given, write it there too
    (folders created; written aside and renamed, so a reader never sees half a report)."""
    text = json.dumps(report, indent=2)
    if path:
        path = Path(path)
        path.parent.mkdir(parents=True, exist_ok=True)
        tmp = path.with_name(path.name + ".tmp")
        tmp.write_text(text + "\n")
        tmp.replace(path)
    if not quiet:
        print(text)


def open_loop_report(policy_dir: str | Path, heldout: str | Path, decoding: str | None = None,
                     robot: str | None = None, n_action_steps: int | None = None) -> dict[str, Any]:
    """The `vla eval --heldout` report: the policy's open-loop error on demonstrations it never saw (no simulator).
    `robot`: whose actions the dataset holds (None: the dataset's `robot_type`); `n_action_steps`: the
    executed span the error is taken over (None: the checkpoint's)."""
    from vla.model.vla import VLAModel
    from vla.policy import check_decoding_trained
    from vla.train.validate import open_loop_error

    model = VLAModel.from_pretrained(policy_dir)
    check_decoding_trained(Path(policy_dir), decoding or model.config.decoding)  # as a policy load would
    executed = model.config.executed_steps(n_action_steps)
    return {"policy": str(policy_dir), "heldout": str(heldout), "decoding": decoding or model.config.decoding,
            "chunk_size": model.config.chunk_size, "n_action_steps": executed,
            **open_loop_error(model, heldout, decoding, robot=robot, n_action_steps=executed)}
