"""`vla bench ros-eval`: the same seeds through the ROS graph and through `vla eval`, and how far the
published commands ever were from the arm.

The ROS arm is `sim_bringup.launch.xml` as it starts the nodes (sim node, policy node, policy server),
free-running in real time with its defaults (wait_for_policy, asynchronous refill, blending), the
seeds run back to back (`seeds:=S-E exit_when_done:=true`). The sim's outcomes give the successes.
Every ~/status of the policy node carries the command it published and the joint state it acted on:
`max_command_gap_rad` is the largest |command - measured| over the arm's joints and all ticks, against
the robot config's gap bound (max_velocity x command_gap_s). The eval arm is `vla eval` on the same seeds.
"""

from __future__ import annotations

import json
import os
import platform
import tempfile
import time
from pathlib import Path

import numpy as np

from sim import make_env
from vla.bench.launch_graph import REPO, LaunchGraph, free_address, ros_env
from vla.evaluate import evaluate
from vla.loading import policy_factory
from vla.robot import load_robot_config


def ros_episodes(policy: str, task: str, seeds: list[int], tmp: Path, domain: int, timeout_s: float,
                 loop: dict[str, str] | None = None, robot: str = "panda") -> dict:
    """Run `seeds` of `task` through the sim_bringup graph (`loop`: launch arguments of the policy node's
    loop, e.g. refill_threshold and blend; the launch file's defaults otherwise); outcomes and the gaps."""
    # deferred: ROS 2 (rclpy and its messages) is the optional ros extra, needed only by the ROS arm of the comparison
    import rclpy
    from rclpy.qos import DurabilityPolicy, QoSProfile
    from std_msgs.msg import String

    config = load_robot_config(robot)
    arm = np.arange(len(config.joints))  # the arm's joints, not the gripper (a joint robot: action == state)
    env = ros_env(tmp, domain)
    args = {"policy": policy, "server": free_address(), "task": task, "seeds": f"{seeds[0]}-{seeds[-1]}",
            "robot_config": str(config.source),
            "exit_when_done": "true", **(loop or {})}
    graph = LaunchGraph(REPO / "launch" / "sim_bringup.launch.xml", args, tmp, env)
    saved = {k: os.environ.get(k) for k in ("ROS_DOMAIN_ID", "ROS_AUTOMATIC_DISCOVERY_RANGE")}
    os.environ.update(ROS_DOMAIN_ID=str(domain), ROS_AUTOMATIC_DISCOVERY_RANGE="LOCALHOST")
    context = rclpy.Context()
    rclpy.init(context=context, domain_id=domain)
    node = rclpy.create_node("bench_ros_eval", context=context)
    executor = rclpy.executors.SingleThreadedExecutor(context=context)
    executor.add_node(node)
    outcomes, gaps, approaching = [], [], 0

    def on_status(msg):
        nonlocal approaching
        s = json.loads(msg.data)
        if s.get("command") is not None and s.get("measured") is not None:
            gaps.append(np.abs(np.asarray(s["command"])[arm] - np.asarray(s["measured"])[arm]))
        approaching += bool(s.get("approaching"))

    latched = QoSProfile(depth=100, durability=DurabilityPolicy.TRANSIENT_LOCAL)
    node.create_subscription(String, "/policy/status", on_status, 1000)
    node.create_subscription(String, "/sim/episode", lambda m: outcomes.append(json.loads(m.data)), latched)
    started = time.monotonic()
    try:
        graph.start()
        while time.monotonic() - started < timeout_s:
            executor.spin_once(timeout_sec=0.1)
            if graph.supervise() is not None:  # the sim exits after its summary: the launch shuts down
                break
        codes = graph.wait_all(60)
        for _ in range(20):  # outcomes still in flight
            executor.spin_once(timeout_sec=0.05)
    finally:
        graph.stop_all()
        executor.shutdown()
        node.destroy_node()
        rclpy.shutdown(context=context)
        for k, v in saved.items():
            os.environ.pop(k, None) if v is None else os.environ.__setitem__(k, v)
    gap = np.max(np.vstack(gaps), axis=0) if gaps else np.full(len(arm), np.nan)
    by_seed = {o["seed"]: o for o in outcomes}
    return {"episodes": len(by_seed), "successes": sum(o["success"] for o in by_seed.values()),
            "outcomes": [by_seed[s] for s in sorted(by_seed)], "exit_codes": codes,
            "max_command_gap_per_joint_rad": [round(float(g), 4) for g in gap], "status_ticks": len(gaps),
            "ticks_approaching": approaching, "wall_s": round(time.monotonic() - started, 1),
            "logs_tail": {} if len(by_seed) == len(seeds) else {k: graph.log(k)[-1500:] for k in graph.logs}}


def eval_episodes(policy: str, task: str, episodes: int, seed: int, robot: str = "panda") -> dict:
    report = evaluate(policy, [task], lambda t: make_env(t, robot=robot), policy_factory(policy), episodes=episodes,
                      seed=seed, progress=False)
    return {"successes": report["tasks"][task]["successes"], "episodes": episodes,
            "failed_seeds": [f["seed"] for f in report["failures"]]}


def bench_ros_eval(policy: str, tasks: list[str], episodes: int, seed: int = 0, robot: str = "panda",
                   timeout_s: float = 900.0, refill_threshold: int | None = None,
                   blend: int | None = None) -> dict:
    """Seeds seed..seed+episodes-1 of each task through the ROS graph and through `vla eval`; successes and
    the command gap against the robot config's bound. `refill_threshold`, `blend`: the policy node's (None:
    sim_bringup's)."""
    config = load_robot_config(robot)
    bound = config.max_command_gap[: len(config.joints)].astype(np.float64)
    resolved = str(Path(policy).resolve()) if Path(policy).is_dir() else policy
    seeds = list(range(seed, seed + episodes))
    report = {"policy": policy, "robot": config.name, "seeds": [seeds[0], seeds[-1]], "tasks": {},
              "command_gap_bound_rad": round(float(bound.min()), 4),
              "command_gap_bound_per_joint_rad": [round(float(b), 4) for b in bound],
              "machine": f"{platform.machine()}, {os.cpu_count()} cores"}
    loop = {k: str(v) for k, v in (("refill_threshold", refill_threshold), ("blend", blend)) if v is not None}
    report["ros_loop"] = loop or "sim_bringup's defaults"
    worst = 0.0
    for i, task in enumerate(tasks):
        with tempfile.TemporaryDirectory() as tmp:
            ros = ros_episodes(resolved, task, seeds, Path(tmp), 100 + (os.getpid() + i) % 100, timeout_s, loop,
                               robot)
        ev = eval_episodes(resolved, task, episodes, seed, robot)
        gap = np.asarray(ros["max_command_gap_per_joint_rad"])
        worst = max(worst, float(np.nanmax(gap)))
        report["tasks"][task] = {"ros": ros, "eval": ev, "within_1": abs(ros["successes"] - ev["successes"]) <= 1,
                                 "gap_within_bound": bool(np.all(gap <= bound + 1e-6))}
        print(f"{task}: ros {ros['successes']}/{ros['episodes']}, eval {ev['successes']}/{ev['episodes']}, "
              f"max command gap {np.nanmax(gap):.3f} rad", flush=True)
    report["ros"] = {"successes": sum(t["ros"]["successes"] for t in report["tasks"].values()),
                     "episodes": sum(t["ros"]["episodes"] for t in report["tasks"].values())}
    report["eval"] = {"successes": sum(t["eval"]["successes"] for t in report["tasks"].values()),
                      "episodes": sum(t["eval"]["episodes"] for t in report["tasks"].values())}
    report["max_command_gap_rad"] = round(worst, 4)
    return report
