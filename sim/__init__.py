"""Simulated task suites behind one registry of task ids.

- `sim.tabletop`: the project's own tabletop with a Franka Panda (ids like `pick`; groups `single`,
  `multi`, `all`).
- `sim.metaworld`: Meta-World's 50 v3 tasks with its Sawyer arm (ids like `metaworld/push-v3`;
  groups `metaworld/easy|medium|hard|very_hard` and the `metaworld/mt10|mt50` sets), present when
  the `metaworld` extra is installed.

A suite is a subpackage with `TASKS` (id -> spec with `id`, `group`, `env_id`, `max_steps`),
`GROUPS` (name -> ids), `ROBOT` (its default robot config), `ENV` (the entry point of its Gymnasium
env, made with `task=<id>`) and `EXPERT` (its scripted expert's class, built from an env): a third
suite is one more folder and one line below. Importing `sim` registers every task's env. This
package is physics, rendering, tasks and experts: it never imports torch.
"""

from __future__ import annotations

import importlib
import importlib.util
import os
from types import ModuleType
from typing import Any

# Offscreen rendering without a display; must be set before mujoco is imported.
os.environ.setdefault("MUJOCO_GL", "egl")

import gymnasium as gym  # noqa: E402

SUITES: dict[str, ModuleType] = {"tabletop": importlib.import_module("sim.tabletop")}
MISSING: dict[str, str] = {}  # suite -> why it is not available
if importlib.util.find_spec("metaworld") is not None:
    SUITES["metaworld"] = importlib.import_module("sim.metaworld")
else:
    MISSING["metaworld"] = "Meta-World is not installed: pip install -e '.[metaworld]'"

TASKS: dict[str, Any] = {}
GROUPS: dict[str, list[str]] = {}
SUITE_OF: dict[str, str] = {}
for _name, _suite in SUITES.items():
    for _task in _suite.TASKS.values():
        if _task.env_id not in gym.registry:
            gym.register(id=_task.env_id, entry_point=_suite.ENV, kwargs={"task": _task.id},
                         max_episode_steps=_task.max_steps)
    TASKS.update(_suite.TASKS)
    GROUPS.update(_suite.GROUPS)
    SUITE_OF.update(dict.fromkeys(_suite.TASKS, _name))


def _missing_suite(name: str) -> str:
    """Why a task id or group of a suite that is not installed cannot be used ('' if that is not the case)."""
    suite = name.split("/", 1)[0] if "/" in name else ""
    return MISSING.get(suite, "")


def get_task(task_id: str):
    """The spec of a task id; an unknown id lists the known ones."""
    if task_id not in TASKS:
        why = _missing_suite(task_id)
        if why:
            raise ValueError(f"task {task_id!r}: {why}")
        raise ValueError(f"unknown task id {task_id!r}; valid ids: {', '.join(TASKS)}")
    return TASKS[task_id]


def resolve_tasks(spec: str) -> list[str]:
    """Comma-separated task ids and group names -> task ids (a group expands in place)."""
    items = [s.strip() for s in spec.split(",") if s.strip()]
    ids: list[str] = []
    unknown: list[str] = []
    for item in items:
        if item in TASKS:
            ids.append(item)
        elif item in GROUPS:
            ids += GROUPS[item]
        elif _missing_suite(item):
            raise ValueError(f"{item!r}: {_missing_suite(item)}")
        else:
            unknown.append(item)
    if unknown or not ids:
        raise ValueError(f"unknown task id(s) {unknown or [spec]}; valid ids: {', '.join(TASKS)} "
                         f"(or a group: {', '.join(GROUPS)}; `vla tasks` lists them)")
    return list(dict.fromkeys(ids))


def suite_of(task_id: str) -> ModuleType:
    get_task(task_id)
    return SUITES[SUITE_OF[task_id]]


def make_env(task_id: str, robot=None, **kwargs) -> gym.Env:
    """The registered env of a task id (e.g. 'pick', 'metaworld/push-v3'), with its time limit.
    `robot`: a robot config name, path or RobotConfig; None: the suite's own."""
    suite = suite_of(task_id)
    return gym.make(TASKS[task_id].env_id, robot=robot if robot is not None else suite.ROBOT, **kwargs)


def scripted_expert(env):
    """The scripted expert of the suite an env belongs to (privileged: it reads the simulator)."""
    task_id = getattr(env.unwrapped, "task_id", None)
    if task_id not in SUITE_OF:
        raise ValueError(f"no scripted expert for {type(env.unwrapped).__name__}: not an env of {', '.join(SUITES)}")
    module, name = SUITES[SUITE_OF[task_id]].EXPERT.split(":")
    return getattr(importlib.import_module(module), name)(env)


def expert_metadata(robot, name: str = "scripted") -> dict[str, Any]:
    """A scripted expert's `metadata`: one action per inference, for the robot's cameras and sizes."""
    return {"name": name, "cameras": robot.camera_names, "state_dim": robot.state_dim,
            "action_dim": robot.action_dim, "chunk_size": 1, "n_action_steps": 1, "fps": robot.control_rate_hz}


__all__ = ["GROUPS", "SUITES", "TASKS", "expert_metadata", "get_task", "make_env", "resolve_tasks", "scripted_expert",
           "suite_of"]
