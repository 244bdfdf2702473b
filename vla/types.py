"""Contracts shared by every part of the stack: key names, observations, actions, policies.

Keys follow LeRobot's naming so that datasets, the simulator, ROS conversion and the wire
protocol all speak the same dictionary. This module imports nothing of the project.
"""

from __future__ import annotations

from typing import Any, Protocol, runtime_checkable

import numpy as np

OBS_STATE = "observation.state"
OBS_IMAGES_PREFIX = "observation.images."
ACTION = "action"
TASK = "task"

Observation = dict[str, Any]
"""`observation.images.<camera>` (uint8 H x W x 3), `observation.state` (float32), `task` (str)."""


def image_key(camera: str) -> str:
    """Observation key of a camera's image, e.g. `observation.images.wrist`."""
    return f"{OBS_IMAGES_PREFIX}{camera}"


def camera_of(key: str) -> str:
    """Inverse of `image_key`: the camera name of an observation key."""
    if not key.startswith(OBS_IMAGES_PREFIX):
        raise ValueError(f"{key!r} is not an image key; expected '{OBS_IMAGES_PREFIX}<camera>'")
    return key[len(OBS_IMAGES_PREFIX) :]


@runtime_checkable
class Policy(Protocol):
    """What the control loop, the evaluator and the policy server drive.

    `predict_chunk` returns float32 absolute joint targets (incl. gripper) of shape (K, D), in
    the robot config's joint order and units. `metadata` describes what the policy expects:
    `name`, `cameras`, `state_dim`, `action_dim`, `chunk_length`, `fps`.
    """

    metadata: dict[str, Any]

    def reset(self) -> None: ...

    def predict_chunk(self, obs: Observation) -> np.ndarray: ...
