"""Meta-World's own scripted policies as this project's `Policy`: one action per inference.

Each reads the privileged 39-value observation (`observation.environment_state`), which only the
simulator has, and returns [dx, dy, dz, gripper] in [-1, 1] (Meta-World's policies may ask for more;
the env would clip, so the expert clips here and the safety filter sees what is sent).
"""

from __future__ import annotations

import warnings

import metaworld.policies
import numpy as np

from sim import expert_metadata
from vla.types import OBS_ENV_STATE


class MetaWorldExpert:
    def __init__(self, env):
        self.env = env.unwrapped
        self.robot = self.env.robot
        self.task = self.env.spec_task
        self.policy = getattr(metaworld.policies, self.task.policy_class)()
        self.metadata = expert_metadata(self.robot)

    def reset(self) -> None:
        """Meta-World's scripted policies keep no state between steps."""

    def predict_chunk(self, obs) -> np.ndarray:
        if OBS_ENV_STATE not in obs:
            raise ValueError(f"Meta-World's scripted policy reads {OBS_ENV_STATE!r}, the simulator's state; "
                             "the observation lacks it (a real robot has no such sensor)")
        with warnings.catch_warnings():  # "Constant(s) may be too high": what the clip below is for
            warnings.simplefilter("ignore")
            action = self.policy.get_action(np.asarray(obs[OBS_ENV_STATE], dtype=np.float64))
        return np.clip(np.asarray(action, dtype=np.float32), self.robot.lower, self.robot.upper)[None]
