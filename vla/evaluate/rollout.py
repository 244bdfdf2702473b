"""One episode through the control loop: the episode loop every policy, bench and diagnosis shares.

The chunk executor and the safety filter run as they do on a robot (synchronously here); a bench that
needs more of the loop (early refill, cross-fading) passes its options, and one that watches the sim
passes an observer, instead of writing a loop of its own.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np

from vla.control import ControlLoop, SafetyFilter
from vla.control.loop import LoopStatus
from vla.types import OBS_STATE, Policy, image_key


@dataclass
class EpisodeResult:
    task_id: str
    seed: int
    instruction: str
    success: bool
    steps: int


def rollout(env, policy: Policy, seed: int, frames: list | None = None,
            safety: SafetyFilter | None = None,
            intervene: Callable[[int, Any, ControlLoop], dict | None] | None = None,
            refill_threshold: int = 0, blend: int = 0,
            observe: Callable[[int, Any, LoopStatus], None] | None = None) -> EpisodeResult:
    """Run one episode to success or time limit through the control loop (chunk executor and
    safety filter, synchronous). Appends video frames when `frames` is a list. `refill_threshold` and
    `blend` are the loop's (`ControlLoop`; 0 and 0: a new chunk when the last one is used up, no
    cross-fade). `observe(steps, env, status)` runs after every step with what the loop did that tick
    (a bench or a diagnosis reads the sim there). `intervene(steps, env, loop)` runs after each step that
    did not end the episode; an observation it returns replaces the env's (someone moved something: a
    perturbation)."""
    obs, info = env.reset(seed=seed)
    loop = ControlLoop(policy, safety or SafetyFilter(env.unwrapped.robot), refill_threshold=refill_threshold,
                       blend=blend)
    loop.reset()
    steps, success = 0, False
    while True:
        status = loop.step(obs)
        obs, _, terminated, truncated, info = env.step(status.action)
        steps += 1
        if frames is not None:
            frames.append(_video_frame(obs))
        if observe is not None:
            observe(steps, env, status)
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
    # deferred: imageio (with its FFmpeg plugin) is needed only to write videos
    import imageio.v2 as imageio

    path.parent.mkdir(parents=True, exist_ok=True)
    # macro_block_size=1 keeps odd image sizes as they are instead of resizing with a warning.
    imageio.mimwrite(path, frames, fps=fps, macro_block_size=1)
