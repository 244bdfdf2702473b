"""The Meta-World suite: Meta-World's 50 v3 tasks with its Sawyer arm, through this project's stack.

Ids like `metaworld/push-v3`; groups `metaworld/easy|medium|hard|very_hard` and the sets
`metaworld/mt10|mt50`. The robot is `configs/robots/sawyer_metaworld.yaml`: actions are end-effector
deltas and a gripper command, not joints. The experts are Meta-World's own scripted policies.
"""

from __future__ import annotations

from sim.metaworld.tasks import GROUPS, TASKS, MetaWorldTask

ROBOT = "sawyer_metaworld"


def register() -> None:
    """One Gymnasium env per task: `vla_sim/metaworld-<name>` with Meta-World's 500-step limit."""
    import gymnasium as gym

    for task in TASKS.values():
        if task.env_id not in gym.registry:
            gym.register(id=task.env_id, entry_point="sim.metaworld.env:MetaWorldEnv", kwargs={"task": task.id},
                         max_episode_steps=task.max_steps)


def scripted_expert(env):
    """Meta-World's scripted policy for the env's task (it reads the privileged object state)."""
    from sim.metaworld.experts import MetaWorldExpert

    return MetaWorldExpert(env)


__all__ = ["GROUPS", "ROBOT", "TASKS", "MetaWorldTask", "register", "scripted_expert"]
