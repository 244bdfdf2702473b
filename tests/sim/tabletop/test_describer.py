import mujoco
import pytest

from sim.tabletop.describer import describe, relation
from sim.tabletop.scene import COLORS, ObjectPose, TabletopScene, cube
from vla.robot import load_robot_config


@pytest.fixture(scope="module")
def scene():
    s = TabletopScene(load_robot_config("panda"))
    yield s
    s.close()


def _place(scene, color, xyz):
    adr = scene.model.joint(cube(color)).qposadr[0]
    scene.data.qpos[adr : adr + 3] = xyz
    scene.data.qpos[adr + 3 : adr + 7] = (1, 0, 0, 0)


def _settle(scene, ticks=10):
    for _ in range(ticks):
        scene.step(scene.robot.home_array.astype(float))


def test_describes_table_bowl_stack_and_region(scene):
    scene.reset({c: ObjectPose(0.4, 0.0, 0.0) for c in COLORS}, (0.55, -0.1))
    _place(scene, "red", (0.55, -0.1, 0.03))  # in the bowl
    _place(scene, "blue", (0.4, 0.0, 0.02))  # on the table
    _place(scene, "green", (0.4, 0.0, 0.061))  # on the blue cube
    mujoco.mj_forward(scene.model, scene.data)
    _settle(scene)
    assert describe(scene) == (
        "the red cube is in the bowl; the green cube is on the blue cube; the blue cube is on the table."
    )
    _place(scene, "green", (0.5, 0.26, 0.02))  # into the left region
    mujoco.mj_forward(scene.model, scene.data)
    _settle(scene)
    assert relation(scene, "green").text() == "the green cube is on the table in the left region"


def test_description_is_deterministic(scene):
    layout = {c: ObjectPose(0.4 + 0.1 * i, 0.1, 0.0) for i, c in enumerate(COLORS)}
    scene.reset(layout, (0.5, -0.1))
    first = describe(scene)
    scene.reset(layout, (0.5, -0.1))
    assert describe(scene) == first
