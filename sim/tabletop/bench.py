"""Simulator throughput: env steps per second with every camera rendering, and its parts."""

from __future__ import annotations

import platform
import time

import numpy as np

from sim import make_env
from sim.tabletop.experts import ScriptedExpert


def bench_sim(task_id: str = "place_in_bowl", steps: int = 500, image_size: int | None = None) -> dict:
    """Drive the expert for `steps` control ticks; time full env steps, physics alone and rendering alone."""
    env = make_env(task_id, image_size=image_size).unwrapped
    expert = ScriptedExpert(env)
    obs, _ = env.reset(seed=0)
    expert.reset()
    env_time = expert_time = 0.0
    seed = 0
    for _ in range(steps):
        t0 = time.perf_counter()
        action = expert.predict_chunk(obs)[0]
        t1 = time.perf_counter()
        obs, _, terminated, _, _ = env.step(action)
        t2 = time.perf_counter()
        expert_time += t1 - t0
        env_time += t2 - t1
        if terminated:
            seed += 1
            obs, _ = env.reset(seed=seed)
            expert.reset()
    scene = env.scene
    target = scene.joint_positions().astype(np.float64)
    t0 = time.perf_counter()
    for _ in range(steps):
        scene.step(target)
    physics = time.perf_counter() - t0
    t0 = time.perf_counter()
    for _ in range(steps):
        for cam in env.robot.camera_names:
            scene.render(cam)
    render = time.perf_counter() - t0
    shape = obs[next(k for k in obs if k.startswith("observation.images."))].shape
    env.close()
    return {
        "task": task_id,
        "steps": steps,
        "cameras": env.robot.camera_names,
        "image_shape": list(shape),
        "control_rate_hz": env.robot.control_rate_hz,
        "physics_substeps": scene.substeps,
        "env_steps_per_s": round(steps / env_time, 1),
        "physics_only_steps_per_s": round(steps / physics, 1),
        "render_all_cameras_per_s": round(steps / render, 1),
        "expert_ms_per_step": round(1000 * expert_time / steps, 2),
        "machine": f"{platform.processor() or platform.machine()}, {__import__('os').cpu_count()} cores",
    }
