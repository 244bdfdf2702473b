"""Success reports: many seeded episodes per task, summarized with 95% intervals, written as JSON.

The harness is generic: it gets an env factory and a policy factory, so the same code scores the
scripted expert, a trained VLA or a LeRobot peer on the same seeds.
"""

from __future__ import annotations

import json
import math
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

import numpy as np
from tqdm import tqdm

from vla.control import SafetyFilter
from vla.evaluate.rollout import EpisodeResult, check_policy_fits, rollout, write_video
from vla.types import Policy


def wilson_interval(successes: int, n: int, z: float = 1.96) -> tuple[float, float]:
    """95% Wilson score interval for a success rate (well-behaved at 0 and n)."""
    if n == 0:
        return (0.0, 1.0)
    p = successes / n
    denom = 1 + z * z / n
    centre = (p + z * z / (2 * n)) / denom
    half = z * math.sqrt(p * (1 - p) / n + z * z / (4 * n * n)) / denom
    return (max(0.0, centre - half), min(1.0, centre + half))


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
