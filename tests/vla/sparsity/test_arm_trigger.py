"""The event trigger's arm discount (vla.sparsity.arm) and the event rule, on synthetic frames and on real
MuJoCo scenes with the shipped policy and its arm mask: a cube moved under a still arm fires on the first
frame, the arm moving over a still table does not, a camera's exposure change does not (issue 33)."""

import json

import numpy as np
import pytest
import torch

from sim import make_env
from sim.tabletop.experts import ScriptedExpert
from sim.tabletop.scene import COLORS
from sim.tabletop.tasks import free_spot
from tests.helpers import SHIPPED_POLICY
from tests.vla.helpers import mini_model
from vla.control import SafetyFilter
from vla.robot import ConfigError, load_robot_config
from vla.sparsity.arm import ARM_MASK, ArmMask, arm_patches
from vla.sparsity.policy import SparseVLAPolicy, SparsityConfig, load_arm_mask
from vla.types import OBS_STATE


def square_frames(cols: list[int], size: int = 64, cell: int = 16) -> np.ndarray:
    """A textured static background with a bright square ("the arm") in row 1, column `col` of each frame."""
    rng = np.random.default_rng(0)
    background = rng.integers(60, 120, (size, size, 3)).astype(np.uint8)
    frames = np.repeat(background[None], len(cols), 0)
    for i, col in enumerate(cols):
        frames[i, cell : 2 * cell, col * cell : (col + 1) * cell] = 230
    return frames


# --- the arm mask --------------------------------------------------------------------------------------
def test_labels_are_the_patches_that_differ_from_the_median_background():
    cols = [0, 1, 2, 3] * 3
    labels = arm_patches(square_frames(cols), grid=4)
    for i, col in enumerate(cols):
        expected = np.zeros((4, 4), bool)
        expected[1, col] = True
        np.testing.assert_array_equal(labels[i], expected)
    with pytest.raises(ValueError, match="do not divide into a 5x5 patch grid"):
        arm_patches(square_frames([0]), grid=5)


def test_the_mask_learns_joint_state_to_patches_and_saves_and_loads_to_identical_predictions(tmp_path):
    cols = np.arange(400) % 4
    states = np.stack([cols * 0.5, np.zeros(400)], 1).astype(np.float32)  # joint 0 sets the column
    labels = arm_patches(square_frames(list(cols)), grid=4)
    mask = ArmMask.fit(states, {"top": labels}, hidden=32, steps=400)
    for col in range(4):
        expected = np.zeros((4, 4), bool)
        expected[1, col] = True
        np.testing.assert_array_equal(mask.patches(np.array([col * 0.5, 0.0]), margin=0)["top"], expected)
    grown = mask.patches(np.array([0.0, 0.0]), margin=1)["top"]
    assert grown[:3, :2].all() and grown.sum() == 6  # one patch grown by one in every direction, clipped
    loaded = ArmMask.load(mask.save(tmp_path / ARM_MASK))
    probe = np.random.default_rng(1).normal(size=(20, 2)).astype(np.float32)
    np.testing.assert_array_equal(loaded.probabilities(probe), mask.probabilities(probe))
    assert loaded.cameras == ["top"] and loaded.grid == 4
    with pytest.raises(ValueError, match="joint state of 2 values"):
        mask.patches(np.zeros(3))
    with pytest.raises(FileNotFoundError, match="vla arm-mask"):
        ArmMask.load(tmp_path / "missing.safetensors")


def test_a_mask_for_other_cameras_or_grid_and_bad_event_settings_fail_at_load():
    model = mini_model()  # cameras top and wrist, an 8 x 8 grid, 8 joint values
    mask = ArmMask(["scene"], 8, np.zeros(8, np.float32), np.ones(8, np.float32),
                   [(np.zeros((8, 64), np.float32), np.zeros(64, np.float32))])
    with pytest.raises(ConfigError, match=r"the arm mask covers cameras \['scene'\]"):
        SparseVLAPolicy(model, SparsityConfig(trigger_cameras=["top"]), arm_mask=mask)
    for bad, match in (({"relevance": "attention"}, "relevance='attention'"),
                       ({"event_patches": 0}, "event_patches=0"), ({"arm_margin": -1}, "arm_margin=-1")):
        with pytest.raises(ConfigError, match=match):
            SparsityConfig(**bad)
    with pytest.raises(FileNotFoundError, match="nowhere.safetensors"):
        load_arm_mask(SparsityConfig(arm_mask="nowhere.safetensors"), None)
    assert load_arm_mask(SparsityConfig(), None) is None  # auto, and no policy folder: no mask
    assert load_arm_mask(SparsityConfig(arm_mask=None), SHIPPED_POLICY) is None


# --- the event rule on real scenes -----------------------------------------------------------------------
@pytest.fixture(scope="module")
def sparse():
    """The shipped policy, event-sparse with its own arm mask (what `vla eval --sparse` loads)."""
    from vla.model.vla import VLAModel

    torch.set_num_threads(1)
    config = SparsityConfig()
    mask = load_arm_mask(config, SHIPPED_POLICY)
    assert mask is not None, f"{SHIPPED_POLICY} has no {ARM_MASK}"
    return SparseVLAPolicy(VLAModel.from_pretrained(SHIPPED_POLICY), config,
                           world_cameras=load_robot_config().world_cameras, arm_mask=mask)


def started(policy, task: str, seed: int):
    """An episode after the policy's first chunk and one still tick: (env, obs, hold action, named cube)."""
    env = make_env(task)
    obs, _ = env.reset(seed=seed)
    policy.reset()
    policy.predict_chunk(obs)
    safety = SafetyFilter(env.unwrapped.robot)
    hold = safety.hold_action(safety.hold_state(obs[OBS_STATE])[0], None)
    obs, *_ = env.step(hold)
    policy.predict_chunk(obs)
    assert policy.step_stats[-1]["reason"] is None  # nothing moved: the next queued action
    return env, obs, hold, env.unwrapped.episode.subtasks[0].target


@pytest.mark.parametrize("which", ["named", "other"])
def test_a_cube_moved_under_a_still_arm_fires_on_the_first_frame(sparse, which):
    for seed in range(3):
        env, obs, _, named = started(sparse, "touch", seed)
        color = named if which == "named" else next(c for c in COLORS if c != named)
        moved = env.unwrapped.displace(color, free_spot(env.unwrapped.scene, color, np.random.default_rng(seed)))
        sparse.predict_chunk(moved)
        last = sparse.step_stats[-1]
        assert last["reason"] == "event" and last["inference"], (seed, last)
        assert last["changed_fraction"] < sparse.sparsity.trigger_threshold  # the share rule alone would not
        env.close()


def test_the_arm_moving_over_a_still_table_does_not_fire(sparse):
    fired = steps = 0
    for task, seed in (("touch", 0), ("push", 1)):
        env, obs, _, _ = started(sparse, task, seed)
        expert = ScriptedExpert(env)
        expert.reset()
        first = len(sparse.step_stats)
        for _ in range(25):
            obs, *_ = env.step(expert.predict_chunk(obs)[0])  # the expert drives; the policy only watches
            sparse.predict_chunk(obs)
        reasons = [s["reason"] for s in list(sparse.step_stats)[first:]]
        fired += sum(r in ("event", "change") for r in reasons)
        steps += len(reasons)
        # the arm's motion does fire patches (more than the event rule's count): the discount is what holds it
        assert max(s["changed_fraction"] for s in list(sparse.step_stats)[first:]) * 64 > 2, task
        env.close()
    assert steps == 50 and fired == 0, fired


def test_a_camera_exposure_change_does_not_fire(sparse):
    env, obs, _, _ = started(sparse, "pick", 2)
    darker = {k: (np.clip(v.astype(np.float32) * 0.85, 0, 255).astype(np.uint8)
                  if k.startswith("observation.images.") else v) for k, v in obs.items()}
    sparse.predict_chunk(darker)
    assert sparse.step_stats[-1]["reason"] is None, sparse.step_stats[-1]
    env.close()


def test_saliency_relevance_weighs_the_trigger_cameras_patches(sparse):
    from dataclasses import replace

    policy = SparseVLAPolicy(sparse.model, replace(sparse.sparsity, relevance="saliency"),
                             world_cameras=["scene"], arm_mask=sparse.arm_mask)
    env, obs, _, _ = started(policy, "touch", 0)
    weights = policy.weights["scene"]
    assert weights.shape == (8, 8) and abs(float(weights.mean()) - 1.0) < 1e-4 and weights.max() > 2
    env.close()


@pytest.mark.slow  # renders a sweep and fits the mask: about 20 s
def test_vla_arm_mask_learns_from_rendered_expert_motion(tmp_path):
    from vla.cli import main

    out, report = tmp_path / ARM_MASK, tmp_path / "report.json"
    assert main(["arm-mask", "--policy", str(SHIPPED_POLICY), "--tasks", "touch", "--episodes", "5",
                 "--out", str(out), "--report", str(report)]) == 0
    scores = json.loads(report.read_text())["cameras"]["scene"]
    # Four episodes teach little (twenty per task give 0.93 / 0.94: docs/BENCHMARKS.md), but far more than
    # chance: a random mask's precision is the arm's share of the image, its recall the share it covers.
    assert scores["precision"] > 2 * scores["arm_share"], scores
    assert scores["recall_at_margin"] > 2 * scores["discounted_share_at_margin"], scores
    assert ArmMask.load(out).cameras == ["scene"]


@pytest.mark.slow  # records, decodes and fits: about 20 s
def test_vla_arm_mask_reads_a_recording_from_a_lerobot_dataset(tmp_path, record_once, capsys):
    """The robot's way: frames and joint states of a LeRobot dataset (here the expert's, written by LeRobot)."""
    from vla.cli import main
    from vla.data.dataset import open_dataset

    root = record_once(["touch"], 5, storage="images")
    out, report = tmp_path / ARM_MASK, tmp_path / "report.json"
    assert main(["arm-mask", "--policy", str(SHIPPED_POLICY), "--dataset", str(root), "--out", str(out),
                 "--report", str(report)]) == 0
    written = json.loads(report.read_text())
    assert written["frames"] == open_dataset(root).num_frames and written["source"] == str(root)
    assert ArmMask.load(out).grid == 8
    assert main(["arm-mask", "--policy", str(SHIPPED_POLICY), "--dataset", str(root), "--robot", "sawyer_metaworld",
                 "--out", str(out)]) == 2
    assert "include none of robot 'sawyer_metaworld'" in capsys.readouterr().err


def test_vla_eval_and_serve_load_the_policy_folders_arm_mask(tmp_path):
    from vla.loading import load_sparsity, servable_policy
    from vla.sparsity.policy import DEFAULT_CONFIG

    served = servable_policy(str(SHIPPED_POLICY), sparsity=load_sparsity())
    assert served.metadata["sparsity"]["arm_mask_loaded"] and served.arm_mask.cameras == ["scene"]
    off = tmp_path / "off.yaml"
    off.write_text(DEFAULT_CONFIG.read_text().replace("arm_mask: auto", "arm_mask: null"))
    without = servable_policy(str(SHIPPED_POLICY), sparsity=load_sparsity(off))
    assert without.arm_mask is None and not without.metadata["sparsity"]["arm_mask_loaded"]
