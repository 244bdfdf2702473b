"""A calibration recording for the event trigger's arm mask, rendered: the arm moving through the poses the
tasks visit, over a cleared table.

`arm_sweep` runs the scripted expert on the given tasks and keeps the joint state of every tick, adds a
copy of each state with its arm joints jittered (so that poses near, not only on, the expert's paths are
seen: a learned policy strays), then replays every state kinematically on a scene whose cubes and bowl
are off camera and renders the cameras asked for. What a robotics engineer does on a real arm with the
table cleared, in seconds.
"""

from __future__ import annotations

import numpy as np

from sim.tabletop.env import TabletopEnv
from sim.tabletop.experts import ScriptedExpert
from sim.tabletop.scene import TabletopScene
from vla.robot import RobotConfig
from vla.types import OBS_STATE


def arm_sweep(tasks: list[str], episodes: int, cameras: list[str], robot: str | RobotConfig = "panda",
              seed: int = 0, jitter_rad: float = 0.1) -> tuple[np.ndarray, dict[str, np.ndarray], np.ndarray]:
    """(states (N, D), frames per camera (N, H, W, 3) uint8, episode number per state (N,)). Episodes use
    seeds seed .. seed+episodes-1 of each task; a jittered copy of a state keeps its episode's number."""
    if not tasks:
        raise ValueError("arm_sweep needs at least one task")
    states: list[np.ndarray] = []
    episode_of: list[int] = []
    for task in tasks:
        env = TabletopEnv(task, robot=robot)
        robot = env.robot
        expert = ScriptedExpert(env)
        for i in range(episodes):
            obs, _ = env.reset(seed=seed + i)
            expert.reset()
            number = episode_of[-1] + 1 if episode_of else 0
            for _ in range(env.spec_task.max_steps):
                states.append(obs[OBS_STATE])
                episode_of.append(number)
                obs, _, terminated, truncated, _ = env.step(expert.predict_chunk(obs)[0])
                if terminated or truncated:
                    break
        env.close()
    recorded = np.asarray(states, dtype=np.float32)
    rng = np.random.default_rng([seed, 0xA23])
    jittered = recorded.copy()
    jittered[:, :-1] += rng.normal(0.0, jitter_rad, size=(len(recorded), recorded.shape[1] - 1))
    all_states = np.clip(np.concatenate([recorded, jittered]), robot.lower, robot.upper).astype(np.float32)
    scene = TabletopScene(robot)
    scene.clear_table()
    frames: dict[str, list[np.ndarray]] = {cam: [] for cam in cameras}
    for q in all_states:
        scene.pose_arm(q)
        for cam in cameras:
            frames[cam].append(scene.render(cam))
    scene.close()
    return all_states, {cam: np.stack(f) for cam, f in frames.items()}, np.array(episode_of * 2, dtype=np.int64)
