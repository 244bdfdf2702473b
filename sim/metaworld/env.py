"""Gymnasium env: one Meta-World v3 task with this project's observation keys and seeding.

Observation: `observation.images.<camera>` (uint8 H x W x 3) for each camera of the robot config,
`observation.state` (float32: the hand's position in metres and the gripper's opening 0..1,
Meta-World's proprioceptive part, what LeRobot calls `agent_pos`), `task` (the instruction) and
`observation.environment_state`: Meta-World's full 39-value observation (hand, gripper, object
positions and orientations, the previous frame's, the goal), privileged, which only a simulator has;
the scripted experts read it. Action: 3 end-effector position deltas and a gripper command, each in
[-1, 1] (Meta-World moves the hand 1 cm per unit per step).

Episodes: `reset(seed=s)` reproduces one task variation (object and goal positions) from `s`, as
LeRobot's Meta-World env seeds it (Meta-World's own `reset(seed=...)` ignores the seed); `reset()`
without a seed draws the next variation from the env's seeded generator. An episode ends on success
(terminated) or after 500 steps (truncated, by the registered time limit). Rendering is MuJoCo's
offscreen renderer with shadows and multisampling off, as the tabletop renders (on a CPU, software
rendering spends most of a frame on those two); the corner cameras, which Meta-World mounts
upside down, are turned the right way up, and `corner2` sits where LeRobot puts it.
"""

from __future__ import annotations

import warnings
from typing import Any

import gymnasium as gym
import metaworld
import mujoco
import numpy as np
from gymnasium import spaces

from sim.metaworld.tasks import TASKS, MetaWorldTask
from vla.robot import RobotConfig, load_robot_config
from vla.types import OBS_ENV_STATE, OBS_STATE, TASK, image_key

# Meta-World mounts these cameras upside down: their images are turned by 180 degrees.
ROTATED_CAMERAS = frozenset({"corner", "corner2", "corner3"})
# Where LeRobot's Meta-World env puts `corner2` (closer to the table than Meta-World's default).
CORNER2_POS = (0.75, 0.075, 0.7)
ENV_STATE_DIM = 39
ENVIRONMENT_STATE_NAMES = [
    *[f"{frame}{name}" for frame in ("", "prev.")
      for name in ("hand.x", "hand.y", "hand.z", "gripper", *[f"objects.{i}" for i in range(14)])],
    "goal.x", "goal.y", "goal.z",
]
INSTRUCTION_CHARSET = "".join(sorted({c for t in TASKS.values() for c in t.instruction} | set(" ,.-")))


class MetaWorldEnv(gym.Env):
    metadata = {"render_modes": ["rgb_array"], "render_fps": 80}
    planner_features = False  # no subtasks or scene descriptions: a task is one instruction
    environment_state_names = ENVIRONMENT_STATE_NAMES

    def __init__(self, task: str = "metaworld/reach-v3", robot: str | RobotConfig = "sawyer_metaworld",
                 image_size: int | tuple[int, int] | None = None, render_mode: str | None = None):
        if task not in TASKS:
            raise ValueError(f"unknown Meta-World task {task!r}; valid ids: {', '.join(TASKS)}")
        self.spec_task: MetaWorldTask = TASKS[task]
        self.task_id = task
        self.robot = robot if isinstance(robot, RobotConfig) else load_robot_config(robot)
        _check_robot(self.robot)
        if render_mode not in (None, "rgb_array"):
            raise ValueError(f"render_mode={render_mode!r}; expected None or 'rgb_array'")
        self.render_mode = render_mode
        if isinstance(image_size, int):
            image_size = (image_size, image_size)
        self._sizes = {c.name: image_size or (c.height, c.width) for c in self.robot.cameras}
        self.metadata = {**self.metadata, "render_fps": self.robot.control_rate_hz}

        with warnings.catch_warnings():  # Meta-World's own observation-space warnings are about its 39-vector
            warnings.simplefilter("ignore")
            benchmark = metaworld.MT1(self.spec_task.name, seed=0)
            self._env = benchmark.train_classes[self.spec_task.name]()
            self._env.set_task(benchmark.train_tasks[0])  # the goal is observable, as the experts need
        self._env._freeze_rand_vec = False  # set_task freezes one variation: each seed draws its own
        self._env.seeded_rand_vec = True  # ... from the env's generator, which reset(seed) seeds
        model = self._env.model
        cameras = [model.camera(i).name for i in range(model.ncam)]
        unknown = [c for c in self._sizes if c not in cameras]
        if unknown:
            raise ValueError(f"robot {self.robot.name!r}: cameras {unknown} are not in Meta-World's scene; "
                             f"expected some of {cameras}")
        if "corner2" in cameras:
            model.cam_pos[model.camera("corner2").id] = CORNER2_POS
        model.vis.quality.shadowsize = 0
        model.vis.quality.offsamples = 0
        self._renderers: dict[str, mujoco.Renderer] = {}

        self.action_space = spaces.Box(self.robot.lower, self.robot.upper, dtype=np.float32)
        obs_spaces: dict[str, spaces.Space] = {
            image_key(c): spaces.Box(0, 255, (*self._sizes[c], 3), dtype=np.uint8) for c in self._sizes}
        obs_spaces[OBS_STATE] = spaces.Box(self.robot.state_lower, self.robot.state_upper, dtype=np.float32)
        obs_spaces[OBS_ENV_STATE] = spaces.Box(-np.inf, np.inf, (ENV_STATE_DIM,), dtype=np.float32)
        obs_spaces[TASK] = spaces.Text(max_length=200, charset=INSTRUCTION_CHARSET)
        self.observation_space = spaces.Dict(obs_spaces)
        self._raw: np.ndarray | None = None

    # --- gymnasium API ------------------------------------------------------------------------
    def reset(self, *, seed: int | None = None, options: dict | None = None):
        super().reset(seed=seed)
        # The variation comes from Meta-World's generator; seed it from ours, so that reset(seed=s)
        # is one variation and a reset without a seed continues the seeded sequence.
        self._env.seed(seed if seed is not None else int(self.np_random.integers(2**31)))
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            self._raw, _ = self._env.reset()
        return self._observation(), self._info(success=False, clipped=False)

    def step(self, action):
        if self._raw is None:
            raise RuntimeError("step() called before reset()")
        a, clipped = self.robot.clip_action(action)
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            self._raw, _, _, _, raw_info = self._env.step(a.astype(np.float32))
        success = bool(raw_info.get("success", 0.0))
        return self._observation(), float(success), success, False, self._info(success, bool(clipped))

    def render(self):
        if self.render_mode == "rgb_array":
            return self._render(self.robot.cameras[0].name)
        return None

    def close(self):
        for renderer in self._renderers.values():
            renderer.close()
        self._renderers.clear()
        self._env.close()

    # --- helpers ------------------------------------------------------------------------------
    def _render(self, camera: str) -> np.ndarray:
        if camera not in self._renderers:
            self._renderers[camera] = mujoco.Renderer(self._env.model, *self._sizes[camera])
        renderer = self._renderers[camera]
        renderer.update_scene(self._env.data, camera)
        image = renderer.render()
        return np.ascontiguousarray(image[::-1, ::-1] if camera in ROTATED_CAMERAS else image)

    def _observation(self) -> dict[str, Any]:
        obs: dict[str, Any] = {image_key(c): self._render(c) for c in self._sizes}
        obs[OBS_STATE] = np.clip(self._raw[:4], self.robot.state_lower, self.robot.state_upper).astype(np.float32)
        obs[OBS_ENV_STATE] = self._raw.astype(np.float32)
        obs[TASK] = self.spec_task.instruction
        return obs

    def _info(self, success: bool, clipped: bool) -> dict[str, Any]:
        return {"task_id": self.task_id, "task": self.spec_task.instruction, "success": success,
                "action_clipped": clipped}


def _check_robot(robot: RobotConfig) -> None:
    """Meta-World's Sawyer takes 4 actions (3 hand deltas and a gripper command) and reports 4 state values."""
    if robot.action_dim != 4 or robot.action_kinds[:3] != ("delta",) * 3 or robot.state_dim != 4:
        raise ValueError(
            f"robot {robot.name!r} has {robot.action_dim} actions {list(robot.action_names)} and {robot.state_dim} "
            "state values; a Meta-World task needs 3 hand deltas and a gripper command, with the hand position "
            "and gripper opening as state (configs/robots/sawyer_metaworld.yaml)")
