import io

import numpy as np
import pytest

rosbags = pytest.importorskip("rosbags")
from rosbags.rosbag2 import StoragePlugin, Writer  # noqa: E402
from rosbags.typesys import Stores, get_typestore  # noqa: E402

from vla.cli import main  # noqa: E402
from vla.data import open_dataset  # noqa: E402
from vla.data.rosbag import convert_rosbag  # noqa: E402
from vla.robot import load_robot_config  # noqa: E402

ROBOT = load_robot_config("panda")
TS = get_typestore(Stores.ROS2_KILTED)
T = TS.types


def _header(t):
    return T["std_msgs/msg/Header"](stamp=T["builtin_interfaces/msg/Time"](sec=int(t), nanosec=int(t % 1 * 1e9)),
                                    frame_id="")


def _q(t):
    """The joint values at time t, in the robot config's order."""
    return ROBOT.home_array.astype(np.float64) + 0.1 * np.sin(t + np.arange(8))


def write_bag(path, plugin, compressed=False, episodes=(("touch the red cube", 0.0), ("lift the blue cube", 5.0)),
              skip_topic=None):
    names = ROBOT.joint_names
    shuffled = names[::-1]  # messages carry the joints in another order than the config
    with Writer(path, version=9, storage_plugin=plugin) as bag:
        def conn(topic, msgtype):
            return None if topic == skip_topic else bag.add_connection(topic, msgtype, typestore=TS)

        image_type = "sensor_msgs/msg/CompressedImage" if compressed else "sensor_msgs/msg/Image"
        cams = {c.name: conn(c.topic, image_type) for c in ROBOT.cameras}
        joints = conn("/joint_states", "sensor_msgs/msg/JointState")
        command = conn(ROBOT.controller.command_topic, "trajectory_msgs/msg/JointTrajectory")
        instruction = conn("/vla/instruction", "std_msgs/msg/String")

        def write(c, t, msg):
            if c is not None:
                bag.write(c, int(t * 1e9), TS.serialize_cdr(msg, msg.__msgtype__))

        for text, start in episodes:
            write(instruction, start, T["std_msgs/msg/String"](data=text))
            for t in np.arange(start + 0.01, start + 3.0, 1 / 30):  # cameras at 30 Hz
                for c in cams.values():
                    img = np.full((24, 32, 3), int(t * 10) % 255, np.uint8)
                    if compressed:
                        from PIL import Image

                        buf = io.BytesIO()
                        Image.fromarray(img).save(buf, format="PNG")
                        msg = T["sensor_msgs/msg/CompressedImage"](header=_header(t), format="png",
                                                                   data=np.frombuffer(buf.getvalue(), np.uint8))
                    else:
                        msg = T["sensor_msgs/msg/Image"](header=_header(t), height=24, width=32, encoding="rgb8",
                                                         is_bigendian=0, step=96, data=img.reshape(-1))
                    write(c, t, msg)
            for t in np.arange(start, start + 3.0, 1 / 50):  # joint states at 50 Hz
                q = _q(t)
                write(joints, t, T["sensor_msgs/msg/JointState"](
                    header=_header(t), name=shuffled, position=np.array([q[names.index(n)] for n in shuffled]),
                    velocity=np.zeros(0), effort=np.zeros(0)))
            for t in np.arange(start, start + 3.0, 1 / 10):  # commands at 10 Hz
                q = _q(t) + 0.01
                point = T["trajectory_msgs/msg/JointTrajectoryPoint"](
                    positions=np.array([q[names.index(n)] for n in shuffled]), velocities=np.zeros(0),
                    accelerations=np.zeros(0), effort=np.zeros(0),
                    time_from_start=T["builtin_interfaces/msg/Duration"](sec=0, nanosec=100_000_000))
                write(command, t, T["trajectory_msgs/msg/JointTrajectory"](header=_header(t), joint_names=shuffled,
                                                                         points=[point]))


@pytest.mark.parametrize("plugin, compressed", [(StoragePlugin.SQLITE3, False), (StoragePlugin.MCAP, True)])
def test_rosbag_converts_into_a_dataset_in_config_order(tmp_path, plugin, compressed):
    write_bag(tmp_path / "bag", plugin, compressed)
    summary = convert_rosbag(tmp_path / "bag", ROBOT, tmp_path / "ds", use_videos=False)
    assert summary["episodes"] == 2 and summary["episode_split"] == "instruction"
    ds = open_dataset(tmp_path / "ds")
    assert ds.tasks == ["touch the red cube", "lift the blue cube"]
    assert ds.cameras == ["scene", "wrist"] and ds.image_shape("scene") == (24, 32, 3)
    for i in (0, 7, len(ds) - 1):
        item = ds[i]
        t = float(item["timestamp"]) + (0.0 if int(item["episode_index"]) == 0 else 5.0)
        # The nearest joint state (50 Hz) and command (10 Hz) within tolerance, reordered to the config.
        assert np.allclose(item["observation.state"].numpy(), _q(t), atol=0.03)
        assert np.allclose(item["action"].numpy(), _q(t) + 0.01, atol=0.06)
    assert 25 <= summary["frames"] <= 62 and summary["messages_per_s"] > 0


def test_bag_without_a_needed_topic_names_it(tmp_path):
    write_bag(tmp_path / "bag", StoragePlugin.SQLITE3, skip_topic="/joint_states")
    with pytest.raises(ValueError, match=r"lacks topic\(s\) \['/joint_states \(sensor_msgs/msg/JointState\)'\]"):
        convert_rosbag(tmp_path / "bag", ROBOT, tmp_path / "ds")


def test_cli_converts_and_refuses_to_overwrite(tmp_path, capsys):
    write_bag(tmp_path / "bag", StoragePlugin.SQLITE3, episodes=(("touch the red cube", 0.0),))
    args = ["dataset", "from-rosbag", str(tmp_path / "bag"), "--robot", "panda", "--out", str(tmp_path / "ds"),
            "--storage", "images"]
    assert main(args) == 0
    assert '"episodes": 1' in capsys.readouterr().out
    assert main(args) == 2 and "not empty" in capsys.readouterr().err
