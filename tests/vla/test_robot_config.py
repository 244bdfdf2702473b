import copy

import numpy as np
import pytest
import yaml

from vla.robot import ROBOT_DIR, ConfigError, load_robot_config, robot_config_from_dict


@pytest.fixture
def panda_dict():
    return yaml.safe_load((ROBOT_DIR / "panda.yaml").read_text())


def test_panda_config_loads_with_joint_order_and_limits():
    robot = load_robot_config("panda")
    assert robot.joint_names == [f"joint{i}" for i in range(1, 8)] + ["finger_joint1"]
    assert robot.action_dim == 8
    assert robot.lower.dtype == np.float32 and np.all(robot.lower < robot.upper)
    assert robot.camera_names == ["scene", "wrist"]
    assert robot.control_rate_hz == 10
    assert np.all((robot.home_array >= robot.lower) & (robot.home_array <= robot.upper))


def test_load_by_path_equals_load_by_name():
    assert load_robot_config(ROBOT_DIR / "panda.yaml") == load_robot_config("panda")


def test_unknown_robot_lists_known_ones():
    with pytest.raises(ConfigError, match="known robots: .*panda"):
        load_robot_config("no_such_arm")


@pytest.mark.parametrize(
    "mutate, message",
    [
        (lambda d: d["joints"][1].update(lower=2.0, upper=1.0), "joint2.*lower < upper"),
        (lambda d: d["home"].__setitem__(3, 0.5), "home value 0.5 for 'joint4' is outside"),
        (lambda d: d["home"].pop(), "home has 7 values; expected 8"),
        (lambda d: d.pop("control_rate_hz"), "missing required field 'control_rate_hz'"),
        (lambda d: d["cameras"].append(dict(d["cameras"][0])), "duplicate camera names"),
        (lambda d: d["cameras"][0].update(width=3), "width=3; expected an integer"),
        (lambda d: d["joints"][0].update(max_velocity=-1), "max_velocity=-1.0; expected a positive"),
        (lambda d: d["controller"].update(bogus=1), "bogus"),
    ],
)
def test_bad_config_fails_at_load_with_a_clear_message(panda_dict, mutate, message):
    data = copy.deepcopy(panda_dict)
    mutate(data)
    with pytest.raises(ConfigError, match=message):
        robot_config_from_dict(data)
