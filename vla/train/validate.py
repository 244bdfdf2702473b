"""Open-loop validation: how far a policy's predicted chunks are from held-out demonstrations.

The offline metric for a robot without a simulator: record a few demonstrations the policy never
trained on (`vla record --seed ...`, or your own teleoperated episodes), then
`vla eval --policy DIR --heldout DATASET`.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np
import torch

from vla.control.safety import SafetyFilter
from vla.data import open_dataset
from vla.model.vla import Batch, VLAModel
from vla.robot import ConfigError, RobotConfig, load_robot_config
from vla.train.data import DemoCache
from vla.train.trainer import vision_image_size


def dataset_robot(demo, robot: str | Path | RobotConfig | None = None) -> RobotConfig | None:
    """The robot whose actions a dataset holds: `robot` if given, else the config named by the dataset's
    `robot_type` (what `vla record` writes). None for a dataset of another robot whose actions are the
    state's own values (positions, the hold-still floor is the measured state); an error when its actions
    are something else (deltas) and no config says how such a robot holds still."""
    actions = list(demo.features["action"].get("names") or [])
    state = list(demo.features["observation.state"].get("names") or [])
    if robot is None and demo.robot_type:
        try:
            robot = load_robot_config(demo.robot_type)
        except ConfigError:
            robot = None
    elif robot is not None and not isinstance(robot, RobotConfig):
        robot = load_robot_config(robot)
    if robot is None:
        if actions and actions != state:
            raise ValueError(f"the dataset's actions {actions} are not its state's values {state} and its robot_type "
                             f"{demo.robot_type!r} names no robot config; pass --robot NAME_OR_YAML")
        return None
    if actions and list(robot.action_names) != actions:
        raise ValueError(f"robot {robot.name!r} has actions {list(robot.action_names)}; the dataset's are {actions}")
    return robot


def hold_still(demo, cache: DemoCache, robot: RobotConfig | None) -> torch.Tensor:
    """(N, D) the action that keeps the robot still at each frame, with the safety filter's hold values:
    a position at its measured state value, a delta at 0, an absolute setpoint at the episode's previous
    command (its configured `hold` on an episode's first frame, as `SafetyFilter.hold_action` before any
    command)."""
    N, D = cache.actions.shape
    if robot is None:  # every action is the state's own value
        return cache.state[:, :D].clone()
    safety = SafetyFilter(robot)
    hold = torch.from_numpy(safety.hold_values.astype(np.float32)).repeat(N, 1)
    hold[:, safety.positions] = cache.state[:, torch.as_tensor(safety.position_state)]
    absolute = np.flatnonzero(np.array(robot.action_kinds) == "absolute")
    if len(absolute):
        episode = torch.as_tensor(np.asarray(demo.lerobot.hf_dataset.with_format(None)["episode_index"]).reshape(-1))
        first = torch.ones(N, dtype=torch.bool)
        first[1:] = episode[1:] != episode[:-1]
        previous = torch.roll(cache.actions, 1, 0)
        hold[:, absolute] = torch.where(first[:, None], hold[:, absolute], previous[:, absolute])
    return hold


@torch.no_grad()
def open_loop_error(model: VLAModel, heldout: str | Path, decoding: str | None = None,
                    batch_size: int = 64, robot: str | Path | RobotConfig | None = None,
                    n_action_steps: int | None = None) -> dict:
    """Mean absolute error of the predicted chunk against the held-out demonstrations' actions.

    `arm_mrad_first` / `arm_mrad_executed`: all action dimensions but the last (the gripper, as
    `RobotConfig.action_names` in vla/robot/spaces.py orders them), over the first action / the first
    `n_action_steps` actions, in thousandths of the action's unit (milliradians for radian joints,
    thousandths of a command for Meta-World's hand deltas); `gripper_executed`: the gripper
    dimension over the executed actions, in its own units.
    `hold_still`: the same for a policy that keeps the robot still (the floor to beat), as `hold_still` says.
    `robot`: whose actions the dataset holds (None: its `robot_type`).
    `decoding`: the policy's own mode unless given; `n_action_steps`: the checkpoint's unless given."""
    cfg = model.config
    demo = open_dataset(heldout)
    resolved = dataset_robot(demo, robot)
    cache = DemoCache.from_dataset(demo, cfg.chunk_size, vision_image_size(cfg), progress=False,
                                   state_keys=cfg.state_keys)
    if cache.cameras != list(cfg.cameras):
        raise ValueError(f"held-out dataset cameras {cache.cameras} differ from the policy's {list(cfg.cameras)}")
    model.eval()
    errors = []
    for start in range(0, len(cache), batch_size):
        index = torch.arange(start, min(start + batch_size, len(cache)))
        batch = Batch(cache.images[index], [cache.texts[i] for i in cache.text_index[index]],
                      cache.state[index])
        errors.append((model.predict(batch, decoding) - cache.chunk(index)).abs())
    err = torch.cat(errors).numpy()  # (N, K, D)
    hold = (cache.chunk(torch.arange(len(cache))) - hold_still(demo, cache, resolved)[:, None, :]).abs().numpy()
    E = n_action_steps or cfg.n_action_steps
    return {
        "frames": int(err.shape[0]),
        "action_names": list(demo.features["action"].get("names") or []),
        "arm_mrad_first": round(float(err[:, 0, :-1].mean() * 1e3), 2),
        "arm_mrad_executed": round(float(err[:, :E, :-1].mean() * 1e3), 2),
        "gripper_executed": round(float(err[:, :E, -1].mean()), 5),
        # The same errors for a policy that holds the robot still: the floor to beat.
        "hold_still": {"arm_mrad_first": round(float(hold[:, 0, :-1].mean() * 1e3), 2),
                       "arm_mrad_executed": round(float(hold[:, :E, :-1].mean() * 1e3), 2),
                       "gripper_executed": round(float(hold[:, :E, -1].mean()), 5)},
    }
