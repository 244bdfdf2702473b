"""The cameras see the work: at the robot config's 128x128 every cube is big enough to tell
apart wherever a task starts it, the push regions are in the scene view, and the wrist camera
keeps the target in view while the expert approaches it. Measured with MuJoCo's segmentation
rendering (which geom each pixel shows), so lighting or colour changes cannot fool it."""

import mujoco
import numpy as np
import pytest

from sim import make_env
from sim.tabletop.experts import ScriptedExpert
from sim.tabletop.scene import COLORS, cube


class Segmentation:
    """Geom id per pixel (-1: background) from a named camera of an env's scene."""

    def __init__(self, env):
        self.scene = env.unwrapped.scene
        self.renderer = mujoco.Renderer(self.scene.model, 128, 128)
        self.renderer.enable_segmentation_rendering()

    def __call__(self, camera: str, groups: tuple[int, ...] | None = None) -> np.ndarray:
        """Segmentation from `camera`; `groups`: draw only the geoms of these groups (nothing else occludes them)."""
        option = mujoco.MjvOption()
        if groups is not None:
            option.geomgroup[:] = [g in groups for g in range(len(option.geomgroup))]
        self.renderer.update_scene(self.scene.data, camera, scene_option=option)
        return self.renderer.render()[..., 0]

    def pixels(self, seg: np.ndarray, geom: str) -> np.ndarray:
        return seg == self.scene.model.geom(geom).id


@pytest.mark.parametrize("task_id", ["touch", "pick", "push", "place_in_bowl", "stack"])
def test_every_cube_is_at_least_9_px_wide_and_12_px_tall_in_the_scene_camera(task_id):
    env = make_env(task_id)
    seg = Segmentation(env)
    widths, heights = [], []
    for seed in range(25):
        env.reset(seed=seed)
        image = seg("scene")
        for color in COLORS:
            ys, xs = np.nonzero(seg.pixels(image, cube(color)))
            assert len(xs), f"{task_id} seed {seed}: the {color} cube is not in the scene camera"
            assert 0 < xs.min() and xs.max() < 127 and 0 < ys.min() and ys.max() < 127, \
                f"{task_id} seed {seed}: the {color} cube is cut by the image border"
            widths.append(np.ptp(xs) + 1)
            heights.append(np.ptp(ys) + 1)
    env.close()
    assert min(widths) >= 9 and min(heights) >= 12, (min(widths), min(heights))


def test_the_push_regions_are_in_the_scene_camera():
    """Framing, not occlusion: the regions are drawn alone (the bowl may stand on one in a given scene)."""
    env = make_env("push")
    seg = Segmentation(env)
    env.reset(seed=0)
    image = seg("scene", groups=(2,))  # the markers' group (tabletop.xml)
    for region in ("left_region", "right_region"):
        assert seg.pixels(image, region).sum() > 300, f"{region} is (almost) out of view"
    env.close()


def test_the_wrist_camera_keeps_the_target_in_view_on_the_way_to_it():
    """Pick: from the first frame until the cube is held, the target is in the wrist image."""
    env = make_env("pick")
    seg = Segmentation(env)
    for seed in range(3):
        obs, info = env.reset(seed=seed)
        expert = ScriptedExpert(env)
        expert.reset()
        target = env.unwrapped.episode.subtasks[0].target
        seen = []
        while not seg.scene.is_held(target):
            seen.append(int(seg.pixels(seg("wrist"), cube(target)).sum()))
            obs, _, terminated, truncated, info = env.step(expert.predict_chunk(obs)[0])
            assert not (terminated or truncated), f"seed {seed}: the expert never grasped"
        assert len(seen) > 10 and min(seen) >= 20, f"seed {seed}: the target left the wrist view ({min(seen)} px)"
    env.close()
