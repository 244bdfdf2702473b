import numpy as np
import pytest
from rosbags.rosbag2 import StoragePlugin  # `make test` installs rosbags: missing, the suite fails

from vla.bench.ros import demo_frame, joint_trajectory, write_demo_bag
from vla.cli import main
from vla.data import open_dataset
from vla.data.rosbag import convert_rosbag
from vla.robot import load_robot_config

ROBOT = load_robot_config("panda")


def _q(t):
    return joint_trajectory(ROBOT, t)


def write_bag(path, plugin, compressed=False, episodes=(("touch the red cube", 0.0), ("lift the blue cube", 5.0)),
              skip_topic=None, encoding="rgb8"):
    storage = "mcap" if plugin == StoragePlugin.MCAP else "sqlite3"
    write_demo_bag(path, ROBOT, episodes, storage=storage, compressed=compressed, skip_topic=skip_topic,
                   encoding=encoding)


def rgb(image) -> np.ndarray:
    """A dataset image (float C x H x W in [0, 1]) as the uint8 H x W x 3 it was stored from."""
    return np.round(image.numpy().transpose(1, 2, 0) * 255).astype(np.uint8)


@pytest.mark.parametrize("plugin, compressed, encoding", [(StoragePlugin.SQLITE3, False, "rgb8"),
                                                          (StoragePlugin.SQLITE3, False, "bgr8"),
                                                          (StoragePlugin.MCAP, True, "png")])
def test_rosbag_converts_into_a_dataset_in_config_order(tmp_path, plugin, compressed, encoding):
    write_bag(tmp_path / "bag", plugin, compressed, encoding=encoding)
    summary = convert_rosbag(tmp_path / "bag", ROBOT, tmp_path / "ds", use_videos=False)
    assert summary["episodes"] == 2 and summary["episode_split"] == "instruction"
    ds = open_dataset(tmp_path / "ds")
    assert ds.tasks == ["touch the red cube", "lift the blue cube"]
    assert ds.cameras == ["scene", "wrist"] and ds.image_shape("scene") == (24, 32, 3)
    for i in (0, 7, len(ds) - 1):
        item = ds[i]
        n = int(item["frame_index"])
        start = 0.0 if int(item["episode_index"]) == 0 else 5.0
        # Frame n is at start + 0.01 + n / 10 s: camera frame 3 n (30 Hz, first at +0.01), pixel for pixel,
        # each camera its own (a channel swap, a wrong decode or the other camera's image fails here).
        for c, camera in enumerate(ds.cameras):
            assert np.array_equal(rgb(item[f"observation.images.{camera}"]), demo_frame(3 * n, c, (24, 32)))
        # The command nearest the frame (10 Hz, at start + n / 10) is the state there + 0.01, exactly; the
        # nearest joint state (50 Hz) is one of the two 0.01 s away. The tolerance is far below the 0.01 gap
        # between command and state: actions read from /joint_states fail, and so does any other command.
        assert np.allclose(item["action"].numpy(), _q(start + n / 10) + 0.01, rtol=0, atol=1e-6)
        state = item["observation.state"].numpy()
        assert any(np.allclose(state, _q(start + n / 10 + dt), rtol=0, atol=1e-6) for dt in (0.0, 0.02))
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
