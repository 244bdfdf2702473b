"""Gymnasium env: one language-conditioned tabletop task with the robot of a robot config.

Observation (LeRobot keys): `observation.images.<camera>` uint8 H x W x 3 for every camera of
the robot config, `observation.state` float32 joint positions incl. gripper, and `task`, the
instruction, plus `observation.environment_state`: privileged object positions (cubes, bowl,
TCP; `sim.tabletop.scene.ENVIRONMENT_STATE_NAMES`) that only a simulator has, for diagnostics and
training-only targets. Action: float32 absolute joint position targets incl. gripper, in the robot
config's joint order, held for one control period (physics substeps interpolate to it).
"""

from __future__ import annotations

import string
from typing import Any

import gymnasium as gym
import numpy as np
from gymnasium import spaces

from sim.tabletop.describer import describe
from sim.tabletop.scene import ENVIRONMENT_STATE_NAMES, TabletopScene
from sim.tabletop.tasks import Episode, Subtask, get_task
from vla.robot import RobotConfig, load_robot_config
from vla.types import NAMED_OBJECTS_NAMES, OBS_ENV_STATE, OBS_NAMED, OBS_STATE, TASK, image_key

INSTRUCTION_CHARSET = string.ascii_letters + string.digits + " ,.:;'-"


class TabletopEnv(gym.Env):
    metadata = {"render_modes": ["rgb_array"], "render_fps": 10}
    planner_features = True  # its info says the subtask and describes the scene: what the planner learns from
    environment_state_names = ENVIRONMENT_STATE_NAMES

    def __init__(
        self,
        task: str = "pick",
        robot: str | RobotConfig = "panda",
        image_size: int | tuple[int, int] | None = None,
        render_mode: str | None = None,
    ):
        self.spec_task = get_task(task)
        self.task_id = self.spec_task.id
        self.robot = robot if isinstance(robot, RobotConfig) else load_robot_config(robot)
        if isinstance(image_size, int):
            image_size = (image_size, image_size)
        if render_mode not in (None, "rgb_array"):
            raise ValueError(f"render_mode={render_mode!r}; expected None or 'rgb_array'")
        self.render_mode = render_mode
        self.scene = TabletopScene(self.robot, image_size)
        self.metadata = {**self.metadata, "render_fps": self.robot.control_rate_hz}
        lo, hi = self.robot.lower, self.robot.upper
        self.action_space = spaces.Box(lo, hi, dtype=np.float32)
        obs_spaces: dict[str, spaces.Space] = {}
        for cam in self.robot.cameras:
            h, w = image_size or (cam.height, cam.width)
            obs_spaces[image_key(cam.name)] = spaces.Box(0, 255, (h, w, 3), dtype=np.uint8)
        obs_spaces[OBS_STATE] = spaces.Box(lo, hi, dtype=np.float32)
        obs_spaces[OBS_ENV_STATE] = spaces.Box(-np.inf, np.inf, (len(ENVIRONMENT_STATE_NAMES),), dtype=np.float32)
        obs_spaces[OBS_NAMED] = spaces.Box(-np.inf, np.inf, (len(NAMED_OBJECTS_NAMES),), dtype=np.float32)
        obs_spaces[TASK] = spaces.Text(max_length=200, charset=INSTRUCTION_CHARSET)
        self.observation_space = spaces.Dict(obs_spaces)
        self.episode: Episode | None = None

    # --- gymnasium API ------------------------------------------------------------------------
    def reset(self, *, seed: int | None = None, options: dict | None = None):
        super().reset(seed=seed)
        self.episode = self.spec_task.sample(self.np_random)
        self.scene.reset(self.episode.cubes, self.episode.bowl_xy)
        return self._observation(), self._info(clipped=[])

    def step(self, action):
        if self.episode is None:
            raise RuntimeError("step() called before reset()")
        target, clipped = self.robot.clip_action(action)
        self.scene.step(target)
        info = self._info(clipped)
        success = info["success"]
        return self._observation(), float(success), success, False, info

    def displace(self, color: str, pose) -> dict[str, Any]:
        """Move a cube elsewhere on the table between steps (a perturbation); the new observation."""
        if self.episode is None:
            raise RuntimeError("displace() called before reset()")
        self.scene.place_cube(color, pose)
        return self._observation()

    def current_observation(self) -> dict[str, Any]:
        """The observation of the scene as it is now, rendered afresh (after its lights changed, say)."""
        if self.episode is None:
            raise RuntimeError("current_observation() called before reset()")
        return self._observation()

    def current_info(self) -> dict[str, Any]:
        """The info of the state as it is now (after a `displace`, say), as `step` would report it."""
        return self._info(clipped=[])

    def render(self):
        if self.render_mode == "rgb_array":
            return self.scene.render(self.robot.cameras[0].name)
        return None

    def close(self):
        self.scene.close()

    # --- helpers ------------------------------------------------------------------------------
    def _observation(self) -> dict[str, Any]:
        obs: dict[str, Any] = {image_key(c): self.scene.render(c) for c in self.robot.camera_names}
        obs[OBS_STATE] = np.clip(self.scene.joint_positions(), self.robot.lower, self.robot.upper)
        obs[OBS_ENV_STATE] = self.scene.environment_state()
        obs[OBS_NAMED] = self._progress()[2].named_positions(self.scene)
        obs[TASK] = self.episode.instruction
        return obs

    def _progress(self) -> tuple[list[bool], int, Subtask]:
        """Each subtask's done flag, the index of the first one not done (len: all done) and the
        current subtask (the last one once all are done)."""
        progress = self.episode.progress(self.scene)
        index = next((i for i, done in enumerate(progress) if not done), len(progress))
        return progress, index, self.episode.subtasks[min(index, len(progress) - 1)]

    def _info(self, clipped: list[str]) -> dict[str, Any]:
        progress, index, current = self._progress()
        return {
            "task_id": self.episode.task_id,
            "task": self.episode.instruction,
            "subtasks": [s.instruction for s in self.episode.subtasks],
            "subtask_index": index,
            "subtask": current.instruction,
            "subtasks_done": progress,
            "success": all(progress),
            "scene_description": describe(self.scene),
            "action_clipped": bool(clipped),
            "clipped_joints": clipped,
        }
