"""DAgger rounds by takeover: the policy drives, then the expert takes over and shows the way from there.

A policy trained on expert demonstrations fails where its own errors take it: states no demonstration
shows (the arm low beside the cube, a cube half-grasped). A takeover round (human-gated DAgger, with
the scripted expert as the human) lets the policy drive the first ticks of an episode through the
control loop, unrecorded, then hands the arm to the expert, which plans from the measured state (the
TCP where it is, a cube already held kept and lifted) and whose way to the goal from there becomes a
demonstration. Fine-tuning on those (`vla train --init P --sim-tasks ... --sim-detours S --detour-policy
P`) is one round; the next round drives with the fine-tuned policy.

Episodes the round cannot use are dropped with their reason, counted by `SimDemos` (`dropped`): the
policy solved the task itself, the expert cannot act from where the policy left the scene (a cube
knocked off the table or out of reach), or the policy never left the start (the arm moved less than
`STILL_M`), which would only repeat an expert demonstration: a round whose policy never moves adds
nothing and says so.

A `PolicyDetour` of a policy folder is small to pickle (the path): `SimDemos` sends it to its rollout
processes, and each process loads the policy once, on its first detour. One of a policy object (any
`Policy`, such as the expert's skills) runs in the process that holds it.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import numpy as np
import torch

from vla.control import ControlLoop, SafetyFilter
from vla.data.record import EpisodeDropped
from vla.evaluate.rollout import check_policy_fits
from vla.policy import VLAPolicy
from vla.types import Policy

TAKEOVER_SEED = 2_000_000  # takeover episodes' scenes: past every evaluation, demonstration and streamed seed
STILL_M = 0.01  # the TCP moved less than this (m) during the policy's ticks: nothing new was reached
NEVER_LEFT = "the policy did not move the arm off the start (nothing new to show)"

_LOADED: dict[str, Policy] = {}  # per process: the policies loaded so far, by folder


def _policy(path: str) -> Policy:
    if path not in _LOADED:
        torch.set_num_threads(1)  # one per rollout process: the processes share the cores
        _LOADED[path] = VLAPolicy.from_pretrained(path, device="cpu")
    return _LOADED[path]


class PolicyDetour:
    """`detour(env, obs, rng) -> (obs, info)` for `vla.data.record.expert_episode`: the policy (a folder, or
    a `Policy`) drives the env for a number of ticks drawn from [`min_ticks`, a third of the task's step
    limit] (the expert needs the rest to finish), through the chunk executor and the safety filter as on a
    robot."""

    def __init__(self, policy: str | Path | Policy, min_ticks: int = 4):
        if min_ticks < 1:
            raise ValueError(f"min_ticks={min_ticks}; expected at least 1 tick of the policy")
        if isinstance(policy, (str, Path)):
            if not (Path(policy) / "config.json").is_file():  # before any rollout process starts
                raise FileNotFoundError(f"--detour-policy {policy}: not a policy folder (no config.json)")
            self.path, self._policy = str(policy), None
        else:
            self.path, self._policy = None, policy
        self.min_ticks = min_ticks

    def __call__(self, env, obs: dict[str, Any], rng: np.random.Generator) -> tuple[dict[str, Any], dict[str, Any]]:
        policy = self._policy or _policy(self.path)
        check_policy_fits(policy.metadata, env)  # a policy for another robot would fail every episode silently
        limit = env.spec.max_episode_steps if env.spec and env.spec.max_episode_steps else 60
        ticks = int(rng.integers(self.min_ticks, max(self.min_ticks, limit // 3) + 1))
        scene = env.unwrapped.scene
        start = scene.tcp_pos()
        loop = ControlLoop(policy, SafetyFilter(env.unwrapped.robot))
        loop.reset()
        info = env.unwrapped.current_info()
        for _ in range(ticks):
            obs, _, terminated, truncated, info = env.step(loop.step(obs).action)
            if terminated or truncated:
                break
        if not info["success"] and np.linalg.norm(scene.tcp_pos() - start) < STILL_M:
            raise EpisodeDropped(NEVER_LEFT)
        return obs, info
