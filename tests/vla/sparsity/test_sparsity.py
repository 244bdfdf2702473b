"""Event-triggered visual sparsity: the detector on synthetic frames, exactness against the dense
path, and the inference-level trigger."""

import numpy as np
import pytest
import torch

from tests.vla.helpers import camera_obs, mini_model
from vla.policy import VLAPolicy
from vla.robot import ConfigError
from vla.sparsity.encoder import SparseVisionEncoder
from vla.sparsity.events import EventDetector, EventThresholds
from vla.sparsity.policy import SparseVLAPolicy, SparsityConfig, load_sparsity_config

GRID = 8  # 128 x 128 frames, 16-pixel patches


def frame_with_square(row: int, col: int, size: int = 128, cell: int = 16) -> np.ndarray:
    rng = np.random.default_rng(0)
    img = rng.integers(60, 120, (size, size, 3)).astype(np.uint8)  # textured, static background
    img[row * cell : (row + 1) * cell, col * cell : (col + 1) * cell] = 230
    return img


# --- the event detector --------------------------------------------------------------------------
def test_first_frame_fires_everywhere_then_a_moved_square_lights_exactly_its_patches():
    det = EventDetector(GRID)
    first = frame_with_square(2, 3)
    assert det.detect("cam", first).all()
    det.commit("cam", first, np.ones((GRID, GRID), bool))
    assert not det.detect("cam", first).any()
    fired = det.detect("cam", frame_with_square(2, 4))
    expected = np.zeros((GRID, GRID), bool)
    expected[2, 3] = expected[2, 4] = True  # where it was and where it is now
    np.testing.assert_array_equal(fired, expected)


def test_sensor_noise_and_global_flicker_light_nothing():
    det = EventDetector(GRID)
    base = frame_with_square(5, 5)
    det.commit("cam", base, np.ones((GRID, GRID), bool))
    rng = np.random.default_rng(1)
    noisy = np.clip(base + rng.normal(0, 2.0, base.shape), 0, 255).astype(np.uint8)
    assert not det.detect("cam", noisy).any()
    brighter = np.clip(base.astype(np.float32) * 1.15, 0, 255).astype(np.uint8)  # lights flicker by 15%
    assert not det.detect("cam", brighter).any()
    dark = np.full((128, 128, 3), 3, np.uint8)  # in the dark, +-2 levels of noise is a large step in log
    det.commit("dark", dark, np.ones((GRID, GRID), bool))
    noisy_dark = np.clip(dark + rng.integers(-2, 3, dark.shape), 0, 255).astype(np.uint8)
    assert not det.detect("dark", noisy_dark).any()


def test_a_flicker_during_a_large_motion_lights_only_the_motion():
    """The global offset is robust: with 3 of 8 rows of patches changing, a flicker still cancels
    (an offset taken as the mean difference would light every static patch here)."""
    det = EventDetector(GRID)
    base = frame_with_square(5, 5)
    det.commit("cam", base, np.ones((GRID, GRID), bool))
    moved = base.copy()
    moved[: 3 * 16] = 240  # something large crossed the top three rows of patches
    flicker = np.clip(moved.astype(np.float32) * 1.15, 0, 255).astype(np.uint8)
    expected = np.zeros((GRID, GRID), bool)
    expected[:3] = True
    np.testing.assert_array_equal(det.detect("cam", flicker), expected)


def test_reference_moves_only_for_encoded_patches_and_hysteresis_keeps_a_moving_patch_on():
    t = EventThresholds(pixel_threshold=0.1, on_threshold=0.5, off_threshold=0.2)
    det = EventDetector(GRID, t)
    base = frame_with_square(0, 0)
    det.commit("cam", base, np.ones((GRID, GRID), bool))
    changed = base.copy()
    changed[16:32, 16:32] = 250  # patch (1, 1) fully changed
    fired = det.detect("cam", changed)
    assert fired[1, 1] and fired.sum() == 1
    det.commit("cam", changed, fired)
    partly = changed.copy()
    partly[16:20, 16:32] = 10  # a quarter of patch (1, 1): below on (0.5), above off (0.2)
    assert det.detect("cam", partly)[1, 1]  # it fired last time, so it stays on
    fresh = EventDetector(GRID, t)
    fresh.commit("cam", changed, np.ones((GRID, GRID), bool))
    assert not fresh.detect("cam", partly)[1, 1]  # without history the same change is below on
    # A patch that was not re-encoded keeps its old reference: the change accumulates.
    det2 = EventDetector(GRID, t)
    det2.commit("cam", base, np.ones((GRID, GRID), bool))
    det2.commit("cam", changed, np.zeros((GRID, GRID), bool))
    assert det2.detect("cam", changed)[1, 1]


def test_bad_frames_and_thresholds_are_named():
    with pytest.raises(ValueError, match="uint8 H x W x 3"):
        EventDetector(GRID).detect("cam", np.zeros((128, 128), np.uint8))
    with pytest.raises(ValueError, match="off_threshold"):
        EventThresholds(on_threshold=0.01, off_threshold=0.05)
    with pytest.raises(ConfigError, match="trigger_threshold=2"):
        SparsityConfig(trigger_threshold=2)
    with pytest.raises(ConfigError, match="unknown sparsity key"):
        load_sparsity_config(None, nonsense=1)


# --- the vision cache ------------------------------------------------------------------------------
def test_partial_encoding_of_every_patch_matches_the_dense_tower():
    model = mini_model()
    enc = SparseVisionEncoder(model.hf)
    pixels = torch.rand(1, 2, 3, 64, 64) * 2 - 1
    dense, _ = enc.encode(pixels, ["top", "wrist"])  # fills the cache
    other = torch.rand(1, 2, 3, 64, 64) * 2 - 1
    full = torch.ones(enc.num_patches, dtype=torch.bool)
    with torch.no_grad():
        want = model.hf.model.connector(model.hf.model.vision_model(pixel_values=other[0]).last_hidden_state)
        # Run every patch through the partial path (not the dense shortcut): the layer math must match.
        outs = [enc._partial(other[:, c], enc.cache[cam], torch.nonzero(full).flatten())
                for c, cam in enumerate(["top", "wrist"])]
        got = model.hf.model.connector(torch.cat(outs, 0))
    torch.testing.assert_close(got, want, rtol=1e-4, atol=1e-5)


def test_sparse_encoder_counts_recomputed_and_reused_patches():
    model = mini_model()
    enc = SparseVisionEncoder(model.hf)
    pixels = torch.rand(1, 2, 3, 64, 64)
    _, counts = enc.encode(pixels, ["top", "wrist"])
    assert counts == {"patches_recomputed": 32, "patches_reused": 0}
    mask = torch.zeros(4, 4, dtype=torch.bool)
    mask[1, 2] = True
    _, counts = enc.encode(pixels, ["top", "wrist"], {"top": mask, "wrist": torch.zeros(4, 4, dtype=torch.bool)})
    assert counts == {"patches_recomputed": 1, "patches_reused": 31}
    # nothing changed anywhere: no pixels are needed, and the features are the cached ones
    still = {cam: torch.zeros(4, 4, dtype=torch.bool) for cam in ("top", "wrist")}
    with_pixels, _ = enc.encode(pixels, ["top", "wrist"], still)
    without, counts = enc.encode(None, ["top", "wrist"], still)
    assert counts == {"patches_recomputed": 0, "patches_reused": 32} and torch.equal(without, with_pixels)
    with pytest.raises(ValueError, match=r"pixels=None.*\['top'\]"):
        enc.encode(None, ["top", "wrist"], {**still, "top": mask})


# --- the policy: exactness and the trigger ----------------------------------------------------------
ZERO = SparsityConfig(pixel_threshold=0, on_threshold=0, off_threshold=0, trigger_threshold=0)


def test_zero_thresholds_equal_the_dense_policy_exactly():
    model = mini_model()
    dense, sparse = VLAPolicy(model, n_action_steps=1), SparseVLAPolicy(model, ZERO)
    sparse.reset()
    for seed in range(4):
        obs, _ = camera_obs(model, seed)
        np.testing.assert_array_equal(sparse.predict_chunk(obs), dense.predict_chunk(obs))
    assert all(s["inference"] and s["patches_reused"] == 0 for s in sparse.step_stats)


def test_without_token_reuse_every_inference_is_the_dense_policys():
    """`token_reuse: false` (configs/sparsity/no_reuse.yaml): the trigger decides when, the model's own path
    encodes every patch; a static frame then gives the dense answer exactly, where reuse gives it within
    two bins."""
    model = mini_model()
    cfg = SparsityConfig(trigger_threshold=0.05, max_open_loop=0, token_reuse=False)
    sparse, dense = SparseVLAPolicy(model, cfg), VLAPolicy(model, n_action_steps=1)
    sparse.reset()
    obs, imgs = camera_obs(model, 0)
    noisy, _ = camera_obs(model, 1, noise=1.0, base=imgs)
    for o in (obs, noisy, obs):
        np.testing.assert_array_equal(sparse.predict_chunk(o), dense.predict_chunk(o))
    every = sparse.encoder.num_patches * len(model.config.cameras)
    assert all(s["inference"] and s["patches_reused"] == 0 and s["patches_recomputed"] == every
               for s in sparse.step_stats)
    assert not sparse.encoder.cache  # nothing kept for reuse


def test_static_scene_reuses_everything_within_tolerance_of_dense():
    model = mini_model()
    cfg = SparsityConfig(trigger_threshold=0.05, max_open_loop=0)  # infer every step, reuse what is static
    sparse, dense = SparseVLAPolicy(model, cfg), VLAPolicy(model, n_action_steps=1)
    sparse.reset()
    obs, imgs = camera_obs(model, 0)
    np.testing.assert_array_equal(sparse.predict_chunk(obs), dense.predict_chunk(obs))
    np.testing.assert_array_equal(sparse.predict_chunk(obs), dense.predict_chunk(obs))  # identical frame: exact
    noisy, _ = camera_obs(model, 1, noise=1.0, base=imgs)  # sensor noise below the detector's threshold
    got, want = sparse.predict_chunk(noisy), dense.predict_chunk(noisy)
    assert sparse.step_stats[-1]["patches_recomputed"] == 0 and sparse.step_stats[-1]["inference"]
    bin_width = (model.action_tok.high - model.action_tok.low) / model.config.bins
    assert np.all(np.abs(got - want) <= 2 * bin_width + 1e-6)  # stated tolerance: two action bins


def test_open_loop_cap_defaults_to_the_checkpoints_own_schedule():
    model = mini_model(chunk_size=8, n_action_steps=2)  # trained to re-plan every 2 steps
    sparse = SparseVLAPolicy(model, load_sparsity_config())  # configs/sparsity/default.yaml: max_open_loop null
    assert sparse.sparsity.max_open_loop == 1
    sparse.reset()
    obs, _ = camera_obs(model, 0)
    for _ in range(5):
        sparse.predict_chunk(obs)  # a static scene never triggers: only the cap makes it re-plan
    assert [s["inference"] for s in sparse.step_stats] == [True, False, True, False, True]
    with pytest.raises(ConfigError, match="max_open_loop=-1"):
        SparsityConfig(max_open_loop=-1)


def test_trigger_skips_inference_when_little_changed_and_drops_the_queue_on_a_large_change():
    model = mini_model()
    sparse = SparseVLAPolicy(model, SparsityConfig(trigger_threshold=0.3, max_open_loop=10, trigger_cameras=["top"]))
    sparse.reset()
    obs, imgs = camera_obs(model, 0)
    first = sparse.predict_chunk(obs)
    queued = list(sparse.queue)
    assert len(queued) == model.config.chunk_size - 1
    second = sparse.predict_chunk(obs)  # nothing changed: the next queued action, no inference
    assert not sparse.step_stats[-1]["inference"]
    np.testing.assert_array_equal(second[0], queued[0])
    moved = dict(imgs, top=np.roll(imgs["top"], 32, axis=1))  # a person moves everything in view
    obs2, _ = camera_obs(model, 0, base=moved)
    sparse.predict_chunk(obs2)
    last = sparse.step_stats[-1]
    assert last["inference"] and last["interrupted"] and last["changed_fraction"] >= 0.3
    assert first.shape == (1, model.config.action_dim)


def test_a_step_from_the_queue_looks_only_at_the_trigger_cameras():
    """A still scene costs the trigger camera's check per step; the wrist camera is checked only
    when the tower runs (its changed patches decide what to re-encode), so its motion alone neither
    triggers inference nor costs a check on queued steps."""
    model = mini_model()
    sparse = SparseVLAPolicy(model, SparsityConfig(trigger_threshold=0.3, max_open_loop=10, trigger_cameras=["top"]))
    sparse.reset()
    looked: list[str] = []
    detect = sparse.detector.detect
    sparse.detector.detect = lambda cam, frame: looked.append(cam) or detect(cam, frame)
    obs, imgs = camera_obs(model, 0)
    sparse.predict_chunk(obs)
    assert sorted(looked) == ["top", "wrist"]  # inference: both, for token reuse
    looked.clear()
    wrist_moves = dict(imgs, wrist=np.roll(imgs["wrist"], 32, axis=1))
    sparse.predict_chunk(camera_obs(model, 0, base=wrist_moves)[0])
    assert looked == ["top"] and not sparse.step_stats[-1]["inference"]
    looked.clear()
    moved = dict(wrist_moves, top=np.roll(imgs["top"], 32, axis=1))
    sparse.predict_chunk(camera_obs(model, 0, base=moved)[0])
    assert looked == ["top", "wrist"] and sparse.step_stats[-1]["inference"]
    assert sparse.step_stats[-1]["patches_recomputed"] > 0


def test_the_sparse_path_refuses_a_half_precision_model():
    model = mini_model()
    model.hf.to(torch.bfloat16)
    with pytest.raises(ConfigError, match="eager fp32 model"):
        SparseVLAPolicy(model, SparsityConfig(trigger_cameras=None))


def test_trigger_defaults_to_the_robots_cameras_not_on_the_arm():
    from vla.robot import load_robot_config

    assert load_robot_config("panda").world_cameras == ["scene"]  # the wrist camera is on_arm
    policy = SparseVLAPolicy(mini_model(), SparsityConfig(), world_cameras=["top"])
    assert policy.trigger_cameras == ["top"]
    assert SparseVLAPolicy(mini_model(), SparsityConfig()).trigger_cameras == ["top", "wrist"]


def test_trigger_cameras_must_exist():
    with pytest.raises(ConfigError, match=r"trigger_cameras \['scene'\]"):
        SparseVLAPolicy(mini_model(), SparsityConfig(trigger_cameras=["scene"]))


def test_vla_eval_sparse_runs_the_shipped_policy_and_refuses_the_expert(tmp_path, capsys):
    import json

    from vla.cli import SHIPPED_POLICY, main

    report = tmp_path / "r.json"
    assert main(["eval", "--policy", str(SHIPPED_POLICY), "--sparse", "--trigger-threshold", "0.2",
                 "--tasks", "touch", "--episodes", "1", "--quiet", "--report", str(report)]) == 0
    assert json.loads(report.read_text())["overall"]["episodes"] == 1
    assert main(["eval", "--policy", "scripted", "--sparse", "--tasks", "touch", "--episodes", "1", "--quiet"]) == 2
    assert "--sparse applies to VLA policies" in capsys.readouterr().err


# --- token pruning under a budget -------------------------------------------------------------------
def test_coverage_selection_keeps_distinct_tokens_and_everything_within_budget():
    from vla.sparsity.pruning import coverage_select

    a, b = torch.tensor([1.0, 0.0, 0.0]), torch.tensor([0.0, 1.0, 0.0])
    feats = torch.stack([a, a * 2, a * 0.5, b])  # three redundant tokens and one distinct
    assert coverage_select(feats, 2).tolist() in ([0, 3], [1, 3], [2, 3])
    assert coverage_select(feats, 9).tolist() == [0, 1, 2, 3]
    with pytest.raises(ValueError, match="token budget 0"):
        coverage_select(feats, 0)


@pytest.mark.parametrize("decoding", ["parallel", "autoregressive"])
def test_pruning_with_every_token_kept_equals_the_model(decoding):
    from vla.model.vla import Batch

    model = mini_model()
    obs, imgs = camera_obs(model, 3)
    batch = VLAPolicy(model).inputs(obs)
    features, _ = SparseVisionEncoder(model.hf).encode(model.pixel_values(batch.images), list(model.config.cameras))
    T = features.shape[1]
    got = model.decode(batch, decoding, image_features=features, keep=[torch.arange(T)] * 2)
    want = model.decode(Batch(batch.images, batch.tasks, batch.state), decoding)
    assert torch.equal(got, want)
    half = model.decode(batch, decoding, image_features=features, keep=[torch.arange(T // 2)] * 2)
    assert half.shape == want.shape and int(half.min()) >= 0 and int(half.max()) < model.config.bins


def test_policy_with_a_token_budget_reports_the_tokens_the_language_model_saw():
    model = mini_model()
    sparse = SparseVLAPolicy(model, SparsityConfig(trigger_threshold=0, token_budget=2))
    sparse.reset()
    obs, _ = camera_obs(model, 0)
    chunk = sparse.predict_chunk(obs)
    assert chunk.shape == (1, model.config.action_dim) and np.all(np.isfinite(chunk))
    assert sparse.step_stats[-1]["lm_image_tokens"] == 2 * len(model.config.cameras)
    with pytest.raises(ConfigError, match="token_budget=0"):
        SparsityConfig(token_budget=0)
    retrieving = SparseVLAPolicy(model, SparsityConfig(trigger_threshold=0, retrieve_tokens=1),
                                 decoding="autoregressive")
    retrieving.reset()
    assert np.all(np.isfinite(retrieving.predict_chunk(obs)))


def test_query_aware_retrieval_in_autoregressive_decoding():
    model = mini_model()
    obs, _ = camera_obs(model, 4)
    batch = VLAPolicy(model).inputs(obs)
    features, _ = SparseVisionEncoder(model.hf).encode(model.pixel_values(batch.images), list(model.config.cameras))
    T = features.shape[1]
    every = [torch.arange(T)] * 2
    full = model.decode(batch, "autoregressive", image_features=features, keep=every)
    assert torch.equal(model.decode(batch, "autoregressive", image_features=features, keep=every, retrieve=T), full)
    one = model.decode(batch, "autoregressive", image_features=features, keep=every, retrieve=1)
    assert one.shape == full.shape and torch.equal(one[:, 0], full[:, 0])  # the first token reads every image token
    with pytest.raises(ValueError, match="retrieve=0"):
        model.decode(batch, "autoregressive", image_features=features, keep=every, retrieve=0)


@pytest.mark.slow  # the whole sparsity bench
def test_sparsity_bench_compares_the_arms_and_can_skip_the_sweep():
    from vla.bench.sparsity import bench_sparsity
    from vla.loading import SHIPPED_POLICY

    report = bench_sparsity(SHIPPED_POLICY, ["push"], episodes=1, sweep_episodes=0, progress=False,
                            still_steps=25, perturb_after=12)
    assert report["sweep"] == [] and "plot" not in report
    for arm in ("dense", "fixed_schedule", "sparse", "sparse_pruned"):
        assert report[arm]["episodes"] == 1, arm
    # the dense arm infers at every step; the event-sparse one reuses its chunk on a still scene
    assert report["dense"]["inference_fraction"] == 1.0
    assert report["sparse"]["inference_fraction"] < 1.0
    assert report["token_reduction"] > 1.0
    # a still scene: the fixed schedule infers every n_action_steps; event-sparse no more often, and
    # after its first inference it re-encodes nothing
    fixed, still = report["still_scene"]["fixed_schedule"], report["still_scene"]["sparse"]
    assert fixed["control_steps"] == still["control_steps"] == 25
    assert fixed["inference_fraction"] == 3 / 25  # steps 0, 10, 20
    assert still["inference_fraction"] <= fixed["inference_fraction"]
    assert still["visual_tokens_per_step"] < fixed["visual_tokens_per_step"]
    # the cube moved at step 12: the fixed schedule's next inference is step 20, 8 steps later
    moved = report["perturbed"]["fixed_schedule"]
    assert moved["episodes"] == 1 and moved["perturbed_episodes"] == 1
    assert moved["mean_reaction_steps"] == 8 and moved["immediate_reactions"] == 0
    assert 0 < report["perturbed"]["sparse"]["changed_fraction_at_move"]["max"] <= 1
    # re-planned at the step of the move (moved or not): the reaction is immediate
    for arm in ("fixed_replan_at_move", "fixed_replan_unmoved"):
        assert report["perturbed"][arm]["mean_reaction_steps"] == 0 and report["perturbed"][arm]["episodes"] == 1
    # the shipped policy's arm mask is loaded; without it (the share rule alone) the move goes unseen until the
    # schedule, with it the trigger reacts no later
    assert report["arm_mask_loaded"] and report["sparse_share_only"]["episodes"] == 1
    share_only, events = report["perturbed"]["sparse_share_only"], report["perturbed"]["sparse"]
    assert share_only["mean_reaction_steps"] == 8 and events["median_reaction_steps"] <= 8
