"""The Meta-World suite: Meta-World's 50 v3 tasks with its Sawyer arm, through this project's stack.

Ids like `metaworld/push-v3`; groups `metaworld/easy|medium|hard|very_hard` and the sets
`metaworld/mt10|mt50`. The robot is `configs/robots/sawyer_metaworld.yaml`: actions are end-effector
deltas and a gripper command, not joints. The experts are Meta-World's own scripted policies.
"""

from __future__ import annotations

from sim.metaworld.tasks import GROUPS, TASKS, MetaWorldTask

ROBOT = "sawyer_metaworld"


ENV = "sim.metaworld.env:MetaWorldEnv"  # the Gymnasium entry point of every task (kwargs: task=<id>)
EXPERT = "sim.metaworld.experts:MetaWorldExpert"  # Meta-World's own scripted policy for the env's task


__all__ = ["ENV", "EXPERT", "GROUPS", "ROBOT", "TASKS", "MetaWorldTask"]
