"""`vla bench serving`: what the ZeroMQ and ROS 2 path adds over in-process inference, and missed ticks.

Three measurements in one run, same policy, same observation (two cameras):
1. in-process `predict_chunk` latency;
2. the same through `vla serve` in another process over tcp://127.0.0.1 (the added latency is
   the difference of medians and of 99th percentiles);
3. ROS 2 image transport of both cameras at 30 Hz between two processes (Fast DDS, loopback);
and the asynchronous control loop against the server at 20 Hz for `duration` seconds,
counting ticks that started later than half a period after their deadline.
"""

from __future__ import annotations

import os
import platform
import subprocess
import sys
import time
from pathlib import Path

import numpy as np

from vla.control import ControlLoop, SafetyFilter
from vla.policy import VLAPolicy
from vla.robot import load_robot_config
from vla.serving.client import PolicyClient, RemotePolicy


def _stats(ms: list[float]) -> dict[str, float]:
    a = np.asarray(ms)
    return {"median_ms": round(float(np.median(a)), 3), "p99_ms": round(float(np.percentile(a, 99)), 3), "n": len(a)}


def _observation(meta: dict, size: int) -> dict:
    rng = np.random.default_rng(0)
    obs = {f"observation.images.{c}": rng.integers(0, 255, (size, size, 3), dtype=np.uint8) for c in meta["cameras"]}
    obs["observation.state"] = np.zeros(meta["state_dim"], np.float32)
    obs["task"] = "pick up the red cube"
    return obs


def _ros_transport(size: int, hz: float, seconds: float) -> dict:
    """Publish two cameras at `hz` from a child process; receive here; latency from the header stamps."""
    # deferred: ROS 2 (rclpy and its messages) is the optional ros extra; the ZeroMQ figures need none of it
    import rclpy
    from rclpy.qos import qos_profile_sensor_data
    from sensor_msgs.msg import Image

    env = {**os.environ, "ROS_AUTOMATIC_DISCOVERY_RANGE": "LOCALHOST", "ROS_DOMAIN_ID": str(60 + os.getpid() % 100)}
    os.environ.update({k: env[k] for k in ("ROS_AUTOMATIC_DISCOVERY_RANGE", "ROS_DOMAIN_ID")})
    child = subprocess.Popen([sys.executable, "-m", "vla.cli.bench.ros_publishers", "cameras",
                              "--seconds", str(seconds + 3), "--size", str(size), "--hz", str(hz)], env=env)
    rclpy.init()
    node = rclpy.create_node("bench_receiver")
    latencies: list[float] = []

    def on_image(msg):
        latencies.append((time.time() - msg.header.stamp.sec - msg.header.stamp.nanosec * 1e-9) * 1000)

    for i in range(2):
        node.create_subscription(Image, f"/bench/cam{i}", on_image, qos_profile_sensor_data)
    start = time.time()
    while time.time() - start < seconds + 2:
        rclpy.spin_once(node, timeout_sec=0.05)
    child.wait()
    node.destroy_node()
    rclpy.shutdown()
    warm = latencies[len(latencies) // 10 :]  # discovery settles in the first second
    return {**_stats(warm), "images_per_s": round(len(latencies) / seconds, 1)}


def bench_serving(policy_dir: str | Path, duration: float = 300.0, calls: int = 200, image_size: int = 128,
                  control_hz: float = 20.0, camera_hz: float = 30.0) -> dict:
    policy = VLAPolicy.from_pretrained(policy_dir)
    obs = _observation(policy.metadata, image_size)
    for _ in range(5):
        policy.predict_chunk(obs)
    inproc = []
    for _ in range(calls):
        t = time.perf_counter()
        policy.predict_chunk(obs)
        inproc.append((time.perf_counter() - t) * 1000)
    port = 5600 + os.getpid() % 300
    server = subprocess.Popen([sys.executable, "-m", "vla.cli", "serve", "--policy", str(policy_dir),
                               "--bind", f"tcp://127.0.0.1:{port}"], stderr=subprocess.DEVNULL)
    report: dict = {"policy": str(policy_dir), "cameras": policy.metadata["cameras"], "image_size": image_size,
                    "machine": f"{platform.machine()}, {os.cpu_count()} cores"}
    try:
        client = PolicyClient(f"tcp://127.0.0.1:{port}", timeout_s=30, retries=0)
        client.health()
        for _ in range(5):
            client.infer(obs)
        remote, server_side = [], []
        for _ in range(calls):
            t = time.perf_counter()
            _, timing = client.infer(obs)
            remote.append((time.perf_counter() - t) * 1000)
            server_side.append(timing["inference_ms"])
        report["in_process"] = _stats(inproc)
        report["zeromq"] = _stats(remote)
        report["zeromq_added"] = {
            "median_ms": round(float(np.median(remote) - np.median(inproc)), 3),
            "p99_ms": round(float(np.percentile(remote, 99) - np.percentile(inproc, 99)), 3),
        }
        report["ros_images"] = _ros_transport(image_size, camera_hz, min(duration, 20.0))
        report["added_total"] = {k: round(report["zeromq_added"][k] + report["ros_images"][k], 3)
                                 for k in ("median_ms", "p99_ms")}
        robot = load_robot_config("panda")
        loop = ControlLoop(RemotePolicy(client), SafetyFilter(robot), refill_threshold=2, blend=2, asynchronous=True)
        period, missed, ticks, holds = 1.0 / control_hz, 0, 0, 0
        state = robot.home_array.copy()
        deadline = time.perf_counter()
        end = deadline + duration
        while deadline < end:
            deadline += period
            status = loop.step({**obs, "observation.state": state})
            holds += status.holding
            state = status.action
            ticks += 1
            slack = deadline - time.perf_counter()
            if slack > 0:
                time.sleep(slack)
            elif -slack > period / 2:
                missed += 1
        report["control_loop"] = {"hz": control_hz, "seconds": duration, "ticks": ticks, "missed_ticks": missed,
                                  "holding_ticks": holds, "inferences": loop.executor.inferences}
        client.close()
    finally:
        server.terminate()
        server.wait(timeout=10)
    return report
