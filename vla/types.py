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
# Privileged simulator state (object positions), LeRobot's name for it. A diagnostic input and a
# training-only target: a real robot has no such sensor, so no shipped policy reads it by default.
OBS_ENV_STATE = "observation.environment_state"
# Privileged too: where the objects the current instruction names are (the acted-on object, then
# where it goes), a training-only grounding target (issue 17: an MLP given all object positions and
# the instruction's words stacks 5/20; given these it stacks 18/20).
OBS_NAMED = "observation.named_objects"
NAMED_OBJECTS_NAMES = ["target.x", "target.y", "target.z", "goal.x", "goal.y", "goal.z"]
PRIVILEGED = (OBS_ENV_STATE, OBS_NAMED)  # what only a simulator knows: never a peer's or a product's input
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


def check_observation(obs: Observation, cameras: list[str], state_dim: int,
                      state_keys: tuple[str, ...] | list[str] = (OBS_STATE,)) -> tuple[list[np.ndarray], np.ndarray]:
    """The frames (in `cameras` order) and the state of an observation, after checking that it has
    exactly these cameras with uint8 H x W x 3 images, `state_dim` finite values and an instruction.
    The state is `state_keys` concatenated (`observation.state` alone unless a policy was trained
    on more). Every policy's input check: the error names what was wrong and what was expected."""
    given = sorted(camera_of(k) for k in obs if k.startswith(OBS_IMAGES_PREFIX))
    if given != sorted(cameras):
        raise ValueError(f"observation has cameras {given}; this policy was trained with {list(cameras)}")
    frames = []
    for cam in cameras:
        img = np.asarray(obs[image_key(cam)])
        if img.dtype != np.uint8 or img.ndim != 3 or img.shape[2] != 3:
            raise ValueError(f"{image_key(cam)}: expected uint8 H x W x 3, got {img.dtype} {img.shape}")
        frames.append(img)
    missing = [k for k in state_keys if k not in obs]
    if missing:
        raise ValueError(f"observation lacks {missing}; this policy reads its state from {list(state_keys)}")
    state = np.concatenate([np.asarray(obs[k], dtype=np.float32).reshape(-1) for k in state_keys])
    if state.shape != (state_dim,) or not np.all(np.isfinite(state)):
        raise ValueError(f"{' + '.join(state_keys)}: expected {state_dim} finite values, got "
                         f"{state.shape[0]} ({np.count_nonzero(~np.isfinite(state))} non-finite)")
    task = obs.get(TASK)
    if not isinstance(task, str) or not task.strip():
        raise ValueError(f"observation needs a non-empty '{TASK}' instruction, got {task!r}")
    return frames, state


@runtime_checkable
class Policy(Protocol):
    """What the control loop, the evaluator and the policy server drive.

    `predict_chunk` returns float32 absolute joint targets (incl. gripper) of shape (K, D), in
    the robot config's joint order and units. `metadata` describes what the policy expects:
    `name`, `cameras`, `state_dim`, `action_dim`, `chunk_size`, `fps`.
    """

    metadata: dict[str, Any]

    def reset(self) -> None: ...

    def predict_chunk(self, obs: Observation) -> np.ndarray: ...
