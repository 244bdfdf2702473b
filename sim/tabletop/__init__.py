"""The tabletop suite: a Franka Panda, coloured cubes, a bowl and three regions on a table.

Language tasks (ids like `pick`; groups `single`, `multi` and `all`) with randomized layouts,
success predicates, a scene describer and privileged scripted experts. The suite interface that
`sim` reads: `TASKS`, `GROUPS`, `ROBOT`, `register()` and `scripted_expert(env)`.
"""

from __future__ import annotations

from sim.tabletop.tasks import TASKS, TaskSpec, get_task

ROBOT = "panda"  # the robot config its scene is built for
GROUPS: dict[str, list[str]] = {
    "single": [t.id for t in TASKS.values() if t.group == "single"],
    "multi": [t.id for t in TASKS.values() if t.group == "multi"],
    "all": list(TASKS),
}


def register() -> None:
    """One Gymnasium env per task: `vla_sim/<Task>-v0`, with its time limit."""
    import gymnasium as gym

    for task in TASKS.values():
        if task.env_id not in gym.registry:
            gym.register(id=task.env_id, entry_point="sim.tabletop.env:TabletopEnv", kwargs={"task": task.id},
                         max_episode_steps=task.max_steps)


def scripted_expert(env):
    """The privileged scripted expert for a tabletop env (reads the simulator's state)."""
    from sim.tabletop.experts import ScriptedExpert

    return ScriptedExpert(env)


__all__ = ["GROUPS", "ROBOT", "TASKS", "TaskSpec", "get_task", "register", "scripted_expert"]
