"""vla_ros/conversions.py on its own (issue 20's untested claims): images both ways (rgb8, bgr8, padded
rows), joint states in any order, and commands for both controller types, the Float64MultiArray of
ros2_control's forward_position_controller included. Real ROS message classes; no graph."""

import sys

import numpy as np
import pytest
from builtin_interfaces.msg import Time
from sensor_msgs.msg import Image, JointState
from std_msgs.msg import Float64MultiArray
from trajectory_msgs.msg import JointTrajectory

from tests.ros.launch_graph import PACKAGE_SRC

if str(PACKAGE_SRC) not in sys.path:
    sys.path.insert(0, str(PACKAGE_SRC))
from vla_ros.conversions import (  # noqa: E402
    command_msg,
    command_to_array,
    command_type,
    default_command_topic,
    image_to_msg,
    joint_state_to_array,
    msg_to_image,
)

pytestmark = pytest.mark.ros
NAMES = ["j1", "j2", "j3"]


def coloured(h: int = 4, w: int = 6) -> np.ndarray:
    """Every pixel different, and red != blue everywhere: a channel swap or a transposition shows."""
    return (np.arange(h * w * 3, dtype=np.uint8).reshape(h, w, 3) * 3) % 251


def test_an_image_round_trips_as_rgb8_with_its_stamp_and_frame():
    image = coloured()
    msg = image_to_msg(image, Time(sec=3, nanosec=7), "wrist")
    assert (msg.encoding, msg.height, msg.width, msg.step) == ("rgb8", 4, 6, 18)
    assert (msg.header.stamp.sec, msg.header.stamp.nanosec, msg.header.frame_id) == (3, 7, "wrist")
    np.testing.assert_array_equal(msg_to_image(msg), image)


def test_bgr8_and_padded_rows_are_read_as_rgb():
    image = coloured()
    padded = np.zeros((4, 6 * 3 + 2), np.uint8)  # a driver that pads each row to 20 bytes
    padded[:, :18] = image[..., ::-1].reshape(4, 18)
    msg = Image(height=4, width=6, encoding="bgr8", step=20, data=padded.tobytes())
    np.testing.assert_array_equal(msg_to_image(msg), image)


def test_an_encoding_other_than_rgb8_or_bgr8_is_refused():
    with pytest.raises(ValueError, match="image encoding 'mono8'; expected rgb8 or bgr8"):
        msg_to_image(Image(height=1, width=1, encoding="mono8", step=1, data=b"\x00"))


def test_joint_states_are_read_in_the_robots_order_and_extra_joints_are_ignored():
    msg = JointState(name=["j3", "extra", "j1", "j2"], position=[3.0, 9.0, 1.0, 2.0])
    np.testing.assert_array_equal(joint_state_to_array(msg, NAMES), [1.0, 2.0, 3.0])


def test_joint_states_missing_a_joint_or_with_unequal_lengths_are_refused():
    with pytest.raises(ValueError, match=r"lacks joints \['j2'\]"):
        joint_state_to_array(JointState(name=["j1", "j3"], position=[1.0, 3.0]), NAMES)
    with pytest.raises(ValueError, match="has 3 names but 2 positions"):
        joint_state_to_array(JointState(name=NAMES, position=[1.0, 2.0]), NAMES)


def test_a_trajectory_command_round_trips_with_its_period_and_stamp():
    msg = command_msg("trajectory", NAMES, np.array([0.1, 0.2, 0.3], np.float32), 1.25, Time(sec=5, nanosec=9))
    assert isinstance(msg, JointTrajectory) and isinstance(msg, command_type("trajectory"))
    assert msg.joint_names == NAMES and len(msg.points) == 1
    assert (msg.points[0].time_from_start.sec, msg.points[0].time_from_start.nanosec) == (1, 250_000_000)
    assert (msg.header.stamp.sec, msg.header.stamp.nanosec) == (5, 9)
    np.testing.assert_allclose(command_to_array(msg, NAMES), [0.1, 0.2, 0.3], atol=1e-7)
    np.testing.assert_allclose(command_to_array(msg, ["j3", "j1", "j2"]), [0.3, 0.1, 0.2], atol=1e-7)
    assert command_msg("trajectory", NAMES, np.zeros(3), 0.1).header.stamp.sec == 0  # "start now"


def test_a_forward_command_is_a_float64_multi_array_in_the_robots_order():
    msg = command_msg("forward", NAMES, np.array([0.1, 0.2, 0.3]), 0.1)
    assert isinstance(msg, Float64MultiArray) and isinstance(msg, command_type("forward"))
    np.testing.assert_array_equal(command_to_array(msg, NAMES), [0.1, 0.2, 0.3])
    with pytest.raises(ValueError, match=r"Float64MultiArray of 2 values; expected 3"):
        command_to_array(Float64MultiArray(data=[0.1, 0.2]), NAMES)


def test_bad_commands_and_controller_types_are_refused_with_what_was_expected():
    with pytest.raises(ValueError, match="JointTrajectory without points"):
        command_to_array(JointTrajectory(joint_names=NAMES), NAMES)
    with pytest.raises(ValueError, match=r"lacks joints \['j3'\]"):
        command_to_array(command_msg("trajectory", ["j1", "j2"], np.zeros(2), 0.1), NAMES)
    with pytest.raises(ValueError, match="controller_type 'effort'; expected one of"):
        command_msg("effort", NAMES, np.zeros(3), 0.1)


def test_the_default_command_topic_follows_the_controller_type():
    assert default_command_topic("trajectory", "arm_controller/joint_trajectory") == "arm_controller/joint_trajectory"
    assert default_command_topic("forward", "arm_controller/joint_trajectory") == "forward_position_controller/commands"
