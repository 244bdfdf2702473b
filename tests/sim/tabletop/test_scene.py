import numpy as np
import pytest

from sim.tabletop.scene import COLORS, ObjectPose, TabletopScene
from vla.robot import load_robot_config


@pytest.fixture(scope="module")
def scene():
    s = TabletopScene(load_robot_config("panda"))
    yield s
    s.close()


def _layout():
    return {c: ObjectPose(0.45 + 0.1 * i, 0.1 - 0.1 * i, 0.3 * i) for i, c in enumerate(COLORS)}


def test_scene_matches_robot_config(scene):
    robot = scene.robot
    assert scene.model.nu == robot.action_dim
    assert scene.substeps * scene.model.opt.timestep == pytest.approx(1 / robot.control_rate_hz)
    for i, joint in enumerate(robot.all_joints):
        assert scene.model.actuator_ctrlrange[i] == pytest.approx([joint.lower, joint.upper], abs=1e-4)


def test_arm_holds_home_pose_and_objects_rest_without_warnings(scene):
    scene.reset(_layout(), (0.40, -0.12))  # the bowl clear of every cube: each rests on the table, none on the rim
    home = scene.robot.home_array.astype(np.float64)
    for _ in range(20):  # two seconds
        scene.step(home)
    assert np.abs(scene.joint_positions() - home).max() < 2e-3
    for c in COLORS:
        assert scene.cube_pos(c)[2] == pytest.approx(0.02, abs=2e-3)
    assert scene.warnings() == {}


def test_cameras_render_uint8_images_that_see_the_objects(scene):
    scene.reset(_layout(), (0.55, -0.12))
    for cam in scene.robot.camera_names:
        img = scene.render(cam)
        assert img.shape == (128, 128, 3) and img.dtype == np.uint8
        red = (img[..., 0] > 150) & (img[..., 1] < 80) & (img[..., 2] < 80)
        assert red.sum() > 3, f"camera {cam} does not see the red cube"


def test_custom_image_size():
    s = TabletopScene(load_robot_config("panda"), image_size=(48, 64))
    s.reset(_layout(), (0.55, -0.12))
    assert s.render("wrist").shape == (48, 64, 3)
    s.close()
