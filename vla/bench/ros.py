"""`vla bench rosbag` and `vla bench ros-record`: conversion speed of a bag, and the recorder node's
sustained rate with two cameras at 30 Hz. Also the synthetic bag writer the tests use."""

from __future__ import annotations

import io
import json
import os
import platform
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import numpy as np
from PIL import Image

from vla.data.rosbag import convert_rosbag
from vla.robot import RobotConfig, load_robot_config


def joint_trajectory(robot: RobotConfig, t: float) -> np.ndarray:
    """A smooth made-up motion around the home pose, in the robot config's order."""
    return robot.home_array.astype(np.float64) + 0.1 * np.sin(t + np.arange(robot.action_dim))


def demo_frame(k: int, camera: int, size: tuple[int, int]) -> np.ndarray:
    """RGB frame k of camera `camera` in a demo bag: red counts the frames, green runs along the columns,
    blue along the rows (offset by camera), so a channel swap, a transposition, a mixed-up camera or a
    frame taken at the wrong time each show in the pixels."""
    H, W = size
    img = np.empty((H, W, 3), np.uint8)
    img[..., 0] = k % 256
    img[..., 1] = (np.arange(W) * 7 + 3)[None, :] % 256
    img[..., 2] = (np.arange(H) * 5 + 100 * camera + 40)[:, None] % 256
    return img


def write_demo_bag(path: str | Path, robot: RobotConfig, episodes=(("touch the red cube", 0.0),),
                   duration: float = 3.0, camera_hz: float = 30.0, size: tuple[int, int] = (24, 32),
                   storage: str = "sqlite3", compressed: bool = False, skip_topic: str | None = None,
                   encoding: str = "rgb8") -> None:
    """A rosbag2 as a teleoperated arm would leave it: cameras (`demo_frame`, as rgb8 or bgr8 Images or PNG
    CompressedImages), /joint_states (50 Hz) and commands (10 Hz, the state + 0.01) with joints in reverse
    config order, and an instruction at each episode start."""
    # deferred: rosbags is the optional ros extra, needed only to write a bag
    from rosbags.rosbag2 import StoragePlugin, Writer
    from rosbags.typesys import Stores, get_typestore

    ts = get_typestore(Stores.ROS2_KILTED)
    T = ts.types
    names = robot.joint_names
    shuffled = names[::-1]

    def header(t):
        stamp = T["builtin_interfaces/msg/Time"](sec=int(t), nanosec=int(t % 1 * 1e9))
        return T["std_msgs/msg/Header"](stamp=stamp, frame_id="")

    plugin = StoragePlugin.MCAP if storage == "mcap" else StoragePlugin.SQLITE3
    with Writer(path, version=9, storage_plugin=plugin) as bag:
        def conn(topic, msgtype):
            return None if topic == skip_topic else bag.add_connection(topic, msgtype, typestore=ts)

        image_type = "sensor_msgs/msg/CompressedImage" if compressed else "sensor_msgs/msg/Image"
        cams = [conn(c.topic, image_type) for c in robot.cameras]
        joints = conn(robot.controller.state_topic, "sensor_msgs/msg/JointState")
        command = conn(robot.controller.command_topic, "trajectory_msgs/msg/JointTrajectory")
        instruction = conn("/vla/instruction", "std_msgs/msg/String")

        def write(c, t, msg):
            if c is not None:
                bag.write(c, int(t * 1e9), ts.serialize_cdr(msg, msg.__msgtype__))

        def image_msg(t, img):
            if compressed:
                buf = io.BytesIO()
                Image.fromarray(img).save(buf, format="PNG")
                return T["sensor_msgs/msg/CompressedImage"](header=header(t), format="png",
                                                            data=np.frombuffer(buf.getvalue(), np.uint8))
            data = img[..., ::-1] if encoding == "bgr8" else img
            return T["sensor_msgs/msg/Image"](header=header(t), height=size[0], width=size[1], encoding=encoding,
                                              is_bigendian=0, step=size[1] * 3,
                                              data=np.ascontiguousarray(data).reshape(-1))

        def reordered(q):
            return np.array([q[names.index(n)] for n in shuffled])

        for text, start in episodes:
            write(instruction, start, T["std_msgs/msg/String"](data=text))
            for k, t in enumerate(np.arange(start + 0.01, start + duration, 1 / camera_hz)):
                for i, c in enumerate(cams):
                    write(c, t, image_msg(t, demo_frame(k, i, size)))
            for t in np.arange(start, start + duration, 1 / 50):
                write(joints, t, T["sensor_msgs/msg/JointState"](
                    header=header(t), name=shuffled, position=reordered(joint_trajectory(robot, t)),
                    velocity=np.zeros(0), effort=np.zeros(0)))
            for t in np.arange(start, start + duration, 1 / 10):
                point = T["trajectory_msgs/msg/JointTrajectoryPoint"](
                    positions=reordered(joint_trajectory(robot, t) + 0.01), velocities=np.zeros(0),
                    accelerations=np.zeros(0), effort=np.zeros(0),
                    time_from_start=T["builtin_interfaces/msg/Duration"](sec=0, nanosec=100_000_000))
                write(command, t, T["trajectory_msgs/msg/JointTrajectory"](header=header(t), joint_names=shuffled,
                                                                         points=[point]))


def bench_rosbag(seconds: float = 30.0, size: int = 128) -> dict:
    """Write a bag with two size x size cameras at 30 Hz, then time its conversion."""
    robot = load_robot_config("panda")
    with tempfile.TemporaryDirectory() as tmp:
        bag = Path(tmp) / "bag"
        write_demo_bag(bag, robot, (("pick up the red cube", 0.0),), duration=seconds, size=(size, size))
        summary = convert_rosbag(bag, robot, Path(tmp) / "ds", fps=robot.control_rate_hz, use_videos=True)
    return {"bag_seconds": seconds, "cameras": 2, "image_size": size, "camera_hz": 30, **summary,
            "machine": f"{platform.machine()}, {os.cpu_count()} cores"}


def bench_ros_recording(seconds: float = 20.0, size: int = 128) -> dict:
    """The recorder node records a 30 Hz arm with two cameras for `seconds`; frames written and dropped."""
    # deferred: ROS 2 (rclpy and its messages) is the optional ros extra; `vla bench rosbag` runs without it
    import rclpy
    from std_srvs.srv import Trigger

    env = {**os.environ, "ROS_AUTOMATIC_DISCOVERY_RANGE": "LOCALHOST", "ROS_DOMAIN_ID": str(160 + os.getpid() % 60)}
    os.environ.update({k: env[k] for k in ("ROS_AUTOMATIC_DISCOVERY_RANGE", "ROS_DOMAIN_ID")})
    package = Path(__file__).resolve().parents[2] / "ros2_ws" / "src" / "vla_ros"
    env["PYTHONPATH"] = os.pathsep.join([str(package), env.get("PYTHONPATH", "")])
    with tempfile.TemporaryDirectory() as tmp:
        out = Path(tmp) / "ds"
        recorder = subprocess.Popen([sys.executable, "-m", "vla_ros.recorder_node", "--ros-args", "-p", f"out:={out}",
                                     "-p", "fps:=30.0", "-p", "task:=bench", "-p", "storage:=video"], env=env,
                                    stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
        rclpy.init()
        node = rclpy.create_node("bench_operator")
        try:
            def call(name):
                client = node.create_client(Trigger, name)
                client.wait_for_service(timeout_sec=120)
                future = client.call_async(Trigger.Request())
                rclpy.spin_until_future_complete(node, future, timeout_sec=300)
                return future.result()

            call("/recorder/start")
            arm = subprocess.Popen([sys.executable, "-m", "vla.cli.bench.ros_publishers", "arm",
                                    "--seconds", str(seconds + 1), "--size", str(size)], env=env)
            arm.wait()
            started = time.perf_counter()
            reply = call("/recorder/stop")
            write_s = time.perf_counter() - started
        finally:
            node.destroy_node()
            rclpy.shutdown()
            recorder.terminate()
            recorder.wait(timeout=30)
        result = json.loads(reply.message) if reply.success else {"error": reply.message}
    frames = result.get("frames", 0)
    return {"seconds": seconds, "cameras": 2, "image_size": size, "camera_hz": 30, "dataset_fps": 30,
            "frames_written": frames, "frames_per_s_of_recording": round(frames / seconds, 1),
            "dropped": result.get("dropped"), "write_seconds": round(write_s, 2),
            "machine": f"{platform.machine()}, {os.cpu_count()} cores"}
