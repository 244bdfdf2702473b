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


# --- robots whose actions are not joints (Meta-World's Sawyer) ------------------------------------------
@pytest.fixture
def sawyer_dict():
    return yaml.safe_load((ROBOT_DIR / "sawyer_metaworld.yaml").read_text())


def test_the_panda_describes_its_state_and_actions_as_its_joints():
    robot = load_robot_config("panda")
    names = [f"joint{i}" for i in range(1, 8)] + ["finger_joint1"]
    assert robot.state_names == robot.action_names == robot.joint_names == names
    assert robot.state_dim == robot.action_dim == 8
    assert robot.action_kinds == ("position",) * 8 and robot.position_mask.all() and robot.joint_actions
    assert np.array_equal(robot.state_lower, robot.lower) and np.array_equal(robot.state_upper, robot.upper)
    assert np.array_equal(robot.lower, np.array([j.lower for j in robot.all_joints], dtype=np.float32))
    assert np.array_equal(robot.max_velocity, np.array([j.max_velocity for j in robot.all_joints], dtype=np.float32))
    assert robot.controller.command_topic == "/joint_trajectory_controller/joint_trajectory"


def test_the_sawyer_config_loads_with_its_state_and_action_kinds():
    robot = load_robot_config("sawyer_metaworld")
    assert robot.state_names == ["hand_x", "hand_y", "hand_z", "gripper_opening"] and robot.state_dim == 4
    assert robot.action_names == ["hand_dx", "hand_dy", "hand_dz", "gripper"] and robot.action_dim == 4
    assert robot.action_kinds == ("delta", "delta", "delta", "absolute")
    assert robot.position_mask.dtype == bool and not robot.position_mask.any() and not robot.joint_actions
    assert np.array_equal(robot.lower, [-1, -1, -1, -1]) and np.array_equal(robot.upper, [1, 1, 1, 1])
    assert np.allclose(robot.state_lower, [-0.6, 0.3, -0.1, 0.0]) and np.allclose(robot.state_upper, [0.6, 1.1, 0.8, 1])
    assert robot.lower.dtype == robot.state_lower.dtype == np.float32
    assert np.all(np.isinf(robot.max_velocity))  # no velocity limit: nothing here is a joint position
    assert robot.actions[3].hold == -1.0 and robot.controller is None and robot.home == ()
    assert robot.control_rate_hz == 80 and robot.camera_names == ["corner2"]


def test_joint_views_of_a_robot_without_joints_fail_loudly_naming_what_it_has():
    robot = load_robot_config("sawyer_metaworld")
    for view in ("joint_names", "all_joints"):
        with pytest.raises(ConfigError, match=rf"{view} is defined only for a joint-position robot.*hand_dx \(delta\)"):
            getattr(robot, view)
    with pytest.raises(ConfigError, match="has no 'home'"):
        _ = robot.home_array


def test_a_robot_declared_by_position_actions_is_a_joint_robot(sawyer_dict):
    data = copy.deepcopy(sawyer_dict)
    data["state"] = [{"name": "j1", "lower": -1.0, "upper": 1.0}, {"name": "j2", "lower": 0.0, "upper": 2.0}]
    data["actions"] = [{"name": "j1", "kind": "position", "lower": -1.0, "upper": 1.0, "max_velocity": 1.5},
                       {"name": "j2", "kind": "position", "lower": 0.0, "upper": 2.0, "max_velocity": 0.5}]
    data["home"] = [0.0, 1.0]
    robot = robot_config_from_dict(data)
    assert robot.joint_actions and robot.joint_names == ["j1", "j2"] and [j.name for j in robot.all_joints] == [
        "j1", "j2"]
    assert np.array_equal(robot.max_velocity, [1.5, 0.5]) and np.array_equal(robot.home_array, [0.0, 1.0])
    data["state"].append({"name": "force", "lower": 0.0, "upper": 10.0})  # a state beyond the joints
    data["home"].append(0.0)
    robot = robot_config_from_dict(data)
    assert not robot.joint_actions and np.array_equal(robot.position_state_index, [0, 1])


def test_dataclass_replace_keeps_a_joint_robot_valid():
    import dataclasses

    robot = load_robot_config("panda")
    assert dataclasses.replace(robot, control_rate_hz=20).action_names == robot.action_names


def _set(key, value):
    return lambda d: d.__setitem__(key, value)


@pytest.mark.parametrize(
    "mutate, message",
    [
        (lambda d: d["actions"][0].update(kind="velocity"),
         r"actions\[0\]: action 'hand_dx': kind='velocity'; expected one of position, delta, absolute"),
        (lambda d: d["actions"][3].pop("hold"), r"actions\[3\]: action 'gripper': kind absolute needs 'hold'"),
        (lambda d: d["actions"][3].update(hold=2.0),
         r"actions\[3\]: action 'gripper': hold=2.0 is outside \[-1.0, 1.0\]"),
        (lambda d: d["actions"][0].update(hold=0.0), r"action 'hand_dx': hold=0.0 given for kind delta"),
        (lambda d: d["actions"][1].update(lower=1.0, upper=-1.0),
         r"actions\[1\]: action 'hand_dy': limits lower=1.0, upper=-1.0; expected finite numbers with lower < upper"),
        (lambda d: d["actions"][1].update(upper=".5m"), r"actions\[1\]: upper='.5m'; expected a number"),
        (lambda d: d["state"][2].update(lower=0.8), r"state\[2\]: state 'hand_z': limits lower=0.8, upper=0.8"),
        (lambda d: d["actions"][0].update(max_velocity=1.0), r"max_velocity=1.0 given for kind delta"),
        (lambda d: d["actions"][0].update(kind="position"), r"'hand_dx': kind position needs 'max_velocity'"),
        (lambda d: d["actions"][0].update(kind="position", max_velocity=1.0),
         r"action 'hand_dx' of kind position has no state entry of that name"),
        (lambda d: d["actions"][2].update(speed=1), r"actions\[2\]: unknown field\(s\) \['speed'\]"),
        (lambda d: d["actions"][2].pop("kind"), r"actions\[2\]: missing required field 'kind'"),
        (lambda d: d["actions"].append(dict(d["actions"][0])), "duplicate action names"),
        (lambda d: d["state"].append(dict(d["state"][0])), "duplicate state names"),
        (_set("actions", []), "'actions' must be a non-empty list"),
        (lambda d: d.pop("state"), "missing required field 'state'"),
        (lambda d: d.pop("actions"), "missing required field 'actions'"),
        (lambda d: [d.pop("state"), d.pop("actions")], "missing required field 'joints' .* or 'actions'"),
        (_set("joints", [{"name": "j", "lower": -1, "upper": 1, "max_velocity": 1}]),
         r"both \['joints'\] and \['state', 'actions'\] given; expected either"),
        (_set("home", [0.0, 0.5]), r"home has 2 values; expected 4 \(one per state entry in \['hand_x'"),
        (_set("home", [0.0, 0.0, 0.0, 0.0]), "home value 0.0 for 'hand_y' is outside"),
    ],
)
def test_a_bad_sawyer_config_fails_at_load_naming_the_field(sawyer_dict, mutate, message):
    data = copy.deepcopy(sawyer_dict)
    mutate(data)
    with pytest.raises(ConfigError, match=message):
        robot_config_from_dict(data)


@pytest.mark.parametrize(
    "mutate, message",
    [
        (lambda d: d.update(actions=[{"name": "a", "kind": "delta", "lower": -1, "upper": 1}]),
         r"both \['joints', 'gripper'\] and \['actions'\] given"),
        (lambda d: d.pop("controller"), "missing required field 'controller'"),
        (lambda d: d.pop("home"), "missing required field 'home'"),
        (lambda d: d.pop("gripper"), "missing required field 'gripper'"),
    ],
)
def test_a_joint_robot_still_needs_its_joint_fields(panda_dict, mutate, message):
    data = copy.deepcopy(panda_dict)
    mutate(data)
    with pytest.raises(ConfigError, match=message):
        robot_config_from_dict(data)


def test_a_position_action_robot_without_home_fails(sawyer_dict):
    data = copy.deepcopy(sawyer_dict)
    data["state"][0]["name"] = "hand_dx"
    data["actions"][0].update(kind="position", max_velocity=1.0)
    with pytest.raises(ConfigError, match="missing 'home'; expected one value per state entry .*required when"):
        robot_config_from_dict(data)
    data["home"] = [0.0, 0.5, 0.2, 1.0]
    assert robot_config_from_dict(data).position_mask.tolist() == [True, False, False, False]


def test_invalid_yaml_is_a_config_error(tmp_path):
    path = tmp_path / "bad.yaml"
    path.write_text("name: x\ndescription: a: b\n")
    with pytest.raises(ConfigError, match="bad.yaml: not valid YAML"):
        load_robot_config(path)
