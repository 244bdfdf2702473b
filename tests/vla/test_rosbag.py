import numpy as np
import pytest
from rosbags.rosbag2 import StoragePlugin  # `make test` installs rosbags: missing, the suite fails

from vla.bench.ros import joint_trajectory, write_demo_bag
from vla.cli import main
from vla.data import open_dataset
from vla.data.rosbag import convert_rosbag
from vla.robot import load_robot_config

ROBOT = load_robot_config("panda")


def _q(t):
    return joint_trajectory(ROBOT, t)


def write_bag(path, plugin, compressed=False, episodes=(("touch the red cube", 0.0), ("lift the blue cube", 5.0)),
              skip_topic=None):
    storage = "mcap" if plugin == StoragePlugin.MCAP else "sqlite3"
    write_demo_bag(path, ROBOT, episodes, storage=storage, compressed=compressed, skip_topic=skip_topic)


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
