"""The tabletop suite: a Franka Panda, coloured cubes, a bowl and three regions on a table.

Language tasks (ids like `pick`; groups `single`, `multi` and `all`) with randomized layouts,
success predicates, a scene describer and privileged scripted experts. The suite interface that
`sim` reads: `TASKS`, `GROUPS`, `ROBOT`, `ENV` and `EXPERT`.
"""

from __future__ import annotations

from sim.tabletop.tasks import TASKS, TaskSpec, get_task

ROBOT = "panda"  # the robot config its scene is built for
GROUPS: dict[str, list[str]] = {
    "single": [t.id for t in TASKS.values() if t.group == "single"],
    "multi": [t.id for t in TASKS.values() if t.group == "multi"],
    "all": list(TASKS),
}


ENV = "sim.tabletop.env:TabletopEnv"  # the Gymnasium entry point of every task (kwargs: task=<id>)
EXPERT = "sim.tabletop.experts:ScriptedExpert"  # the privileged scripted expert, built from an env


__all__ = ["ENV", "EXPERT", "GROUPS", "ROBOT", "TASKS", "TaskSpec", "get_task"]
