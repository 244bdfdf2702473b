"""MuJoCo tabletop simulation: scene, language tasks, scene describer, scripted experts.

Importing `sim` registers one Gymnasium env per task (`vla_sim/<Task>-v0`). This package is
physics, rendering, tasks and experts only: it never imports torch or the model.
"""

import os

# Offscreen rendering without a display; must be set before mujoco is imported.
os.environ.setdefault("MUJOCO_GL", "egl")

import gymnasium as gym  # noqa: E402

from sim.tasks import TASKS, get_task, resolve_tasks  # noqa: E402

for _task in TASKS.values():
    if _task.env_id not in gym.registry:
        gym.register(
            id=_task.env_id,
            entry_point="sim.env:TabletopEnv",
            kwargs={"task": _task.id},
            max_episode_steps=_task.max_steps,
        )


def make_env(task_id: str, **kwargs) -> gym.Env:
    """The registered env of a task id (e.g. 'pick'), with its time limit."""
    return gym.make(get_task(task_id).env_id, **kwargs)


__all__ = ["TASKS", "get_task", "make_env", "resolve_tasks"]
