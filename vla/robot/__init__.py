"""Robot configuration: everything about an arm lives in `configs/robots/<name>.yaml`.

The simulator, the control loop and the ROS 2 nodes read the same file; nothing about a
robot is hard-coded anywhere else. A bad file fails here, at load time, with a message that
names the field, the value given and what was expected.

A robot is described in one of two ways:

- a joint-position robot (the Panda): `joints` + `gripper` (+ `home`, `controller`). Each joint is
  both a measured state value and an action, an absolute position target: state == action space.
- any other robot: `state` (what `observation.state` holds, with bounds) and `actions` (what each
  action value means). An action's `kind` is one of
    position  an absolute joint position target (`max_velocity` required; a state entry of the same
              name measures it): step-limited, start-jump checked, held at the last command or the
              measured state;
    delta     a relative command (e.g. an end-effector displacement): only bounded; holding means 0;
    absolute  a bounded setpoint that is not a measured joint (e.g. a gripper effort): held at the
              last command, else at its `hold` value (required, within the bounds).
  `home` (one value per state entry) is required only when there are position actions, and
  `controller` is optional (a simulated robot has no ros2_control controller).

`command_gap_s` (optional, default 0.25 s) bounds how far a command may lead the measured joints: each
position at most its max_velocity x command_gap_s from the joint measured at that tick (the safety
filter's gap bound). It must cover the tracking lag of normal motion (the Panda in the sim lags its
command by up to 0.37 rad = 0.17 s at its velocity limits) and stays short of what a reset, a hand-moved
arm or a stale command opens (1-2 rad).

Both forms give every caller the same view: `state_names`, `state_dim`, `state_lower`/`state_upper`,
`action_names`, `action_dim`, `lower`/`upper` (action bounds), `action_kinds`, `position_mask`,
`joint_actions`. The joint views `all_joints` and `joint_names` exist only for robots whose actions are
joint positions measured by the state (`joint_actions`); elsewhere they raise ConfigError, so that code
written for joints fails loudly instead of taking a delta for a joint (`joints` is then empty and
`gripper` None: they are what a `joints`/`gripper` file gave).

The package: `specs` (the entries and ConfigError), `spaces` (the state and action views and the limits the
safety filter reads), `config` (RobotConfig), `load` (where the files are, YAML -> RobotConfig).
"""

from vla.robot.config import RobotConfig
from vla.robot.load import CONFIG_DIR, ROBOT_DIR, available_robots, load_robot_config, robot_config_from_dict
from vla.robot.spaces import Spaces
from vla.robot.specs import ACTION_KINDS, ActionSpec, CameraSpec, ConfigError, ControllerSpec, JointSpec, StateSpec

__all__ = [
    "ACTION_KINDS", "CONFIG_DIR", "ROBOT_DIR", "ActionSpec", "CameraSpec", "ConfigError", "ControllerSpec",
    "JointSpec", "RobotConfig", "Spaces", "StateSpec", "available_robots", "load_robot_config",
    "robot_config_from_dict",
]
