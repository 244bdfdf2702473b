"""Streamed demonstrations (`vla train --stream`): real expert episodes rolled out by a real worker
process while training draws; each frame drawn at most `reuse` times, fresh seeds only, and a
worker that dies or falls silent stops training with a named reason."""

import json
import os
import signal
from collections import Counter

import numpy as np
import pytest
import torch

from vla.train.stream import EVALUATION_SEEDS, STREAM_SEED, SimStream, StreamError
from vla.types import OBS_ENV_STATE, OBS_STATE

TASKS = ["touch", "pick"]


def stream(**kwargs) -> SimStream:
    options = dict(workers=1, progress=False, images=False, capacity=600, reuse=2) | kwargs
    return SimStream(TASKS, 2, **options)


def test_each_frame_is_drawn_at_most_reuse_times_from_fresh_seeds_only():
    source = stream()
    buffer = source.cache(5, None, (OBS_STATE, OBS_ENV_STATE))
    generator = torch.Generator().manual_seed(0)
    draws: Counter = Counter()  # (episode, frame) -> times drawn
    seed_of: dict[int, int] = {}
    try:
        for _ in range(25):  # 1,600 draws of at most 600 frames held: several generations of the buffer
            index = buffer.draw(64, generator)
            assert len(set(index.tolist())) == 64  # no frame twice in one batch
            draws.update(zip(buffer.episode[index].tolist(), buffer.frame[index].tolist(), strict=True))
            seed_of.update(zip(buffer.episode[index].tolist(), buffer.seed[index].tolist(), strict=True))
    finally:
        source.close()
    assert max(draws.values()) == 2  # reuse=2: drawn twice, then its slot took a new frame
    streamed = [s for s in seed_of.values() if s >= 0]  # -1: the warm-up's frames
    assert len(streamed) > 10, "training must have moved on to streamed episodes"
    assert min(streamed) >= STREAM_SEED and not set(streamed) & set(EVALUATION_SEEDS)
    seeds = buffer.seeds  # every streamed episode, in arrival order: none repeats a (task, seed)
    assert len(seeds) == len(set(seeds)) == buffer.report["episodes_streamed"]
    assert {t for t, _ in seeds} == set(TASKS)
    assert buffer.report["frames_drawn"] == 25 * 64
    # the chunk of a frame is its episode's next actions, the last one repeated past the end
    held = buffer.live.nonzero()[:, 0]
    padded = buffer.pads[held]
    assert padded.any() and not padded[:, 0].any()
    assert torch.equal(buffer.chunk(held)[padded], buffer.chunk(held)[:, -1:, :].expand(-1, 5, -1)[padded])


def test_the_warm_up_gives_statistics_and_the_first_frames():
    source = stream(capacity=4000)
    try:
        buffer = source.cache(5, None, (OBS_STATE,))
        assert len(buffer) == source.num_frames  # every warm-up frame fits
        assert (buffer.seed[buffer.live] == -1).all()
        low, high = buffer.relative_quantiles()
        assert low.shape == (source.action_dim,) and (low <= high).all()
        assert source.cache(5, None, (OBS_STATE,)) is buffer
        with pytest.raises(ValueError, match="already feeds a buffer"):
            source.cache(7, None, (OBS_STATE,))
        with pytest.raises(ValueError, match="at least 4002 frames"):  # it would wait for a fill that never comes
            buffer.draw(2001, torch.Generator().manual_seed(0))
    finally:
        source.close()


def test_the_warm_up_camera_frames_are_held_once_in_the_buffer():
    """At 60,000 frames of two 128 px cameras the buffer is 5.9 GB; the warm-up's own copy of its frames
    (about 2 GB for 500 episodes) is released once the buffer holds them."""
    source = stream(images=True)
    try:
        buffer = source.cache(5, 32, (OBS_STATE,))
        live = buffer.live.nonzero()[:, 0]
        assert len(live) == source.num_frames and buffer.images[live].float().mean() > 10  # real frames
        assert not [k for e in source.episodes for k in e if k.startswith("observation.images.")]
    finally:
        source.close()


@pytest.mark.slow
def test_a_worker_that_dies_stops_training_with_its_name_and_exit_code():
    source = stream()
    buffer = source.cache(5, None, (OBS_STATE,))
    generator = torch.Generator().manual_seed(0)
    try:
        buffer.draw(64, generator)
        worker = buffer._processes[0]
        os.kill(worker.pid, signal.SIGKILL)
        worker.join(timeout=10)
        with pytest.raises(StreamError, match=r"vla-stream-0 exited with code -9 .*checkpoints"):
            for _ in range(100):  # the frames already queued are used first, then it is missed
                buffer.draw(64, generator)
    finally:
        source.close()


@pytest.mark.slow
def test_a_silent_worker_stops_training_after_stall_s():
    source = stream(stall_s=2.0)
    buffer = source.cache(5, None, (OBS_STATE,))
    generator = torch.Generator().manual_seed(0)
    worker = buffer._processes[0]
    os.kill(worker.pid, signal.SIGSTOP)  # alive, sending nothing
    try:
        with pytest.raises(StreamError, match="no streamed episode for 2 s"):
            for _ in range(100):
                buffer.draw(64, generator)
    finally:
        os.kill(worker.pid, signal.SIGCONT)
        source.close()
    assert not any(p.is_alive() for p in buffer._processes)


@pytest.mark.parametrize(("kwargs", "message"), [
    (dict(seed=31337), "must not be evaluation scenes"),
    (dict(reuse=0), "reuse=0"),
    (dict(stream_workers=0), "stream_workers=0"),
    (dict(stall_s=0), "stall_s=0"),
])
def test_bad_stream_settings_are_refused_before_any_rollout(kwargs, message):
    with pytest.raises(ValueError, match=message):
        SimStream(TASKS, 2, progress=False, **kwargs)


@pytest.mark.slow
def test_vla_train_streams_and_reports_what_it_read(tmp_path, capsys):
    from vla.cli import main
    from vla.policy import VLAPolicy

    out = tmp_path / "policy"
    code = main(["train", "--sim-tasks", "touch", "--sim-episodes", "2", "--stream", "--stream-buffer", "600",
                 "--stream-reuse", "1", "--sim-workers", "1", "--steps", "12", "--batch-size", "32",
                 "--checkpoint-every", "12", "--out", str(out), "--quiet"])
    assert code == 0, capsys.readouterr().err
    info = json.loads((out / "train_info.json").read_text())
    report = info["stream"]
    assert report["reuse"] == 1 and report["frames_drawn"] == 12 * 32
    assert report["episodes_streamed"] >= 1  # 384 draws of single-use frames: more than the warm-up holds
    assert "streamed from seed 1000000" in info["dataset"]
    policy = VLAPolicy.from_pretrained(out)
    assert policy.metadata["action_dim"] == 8
    chunk = np.asarray(policy.predict_chunk(_observation(policy)))
    assert chunk.shape[1] == 8 and np.isfinite(chunk).all()


def test_stream_flags_need_sim_tasks(capsys):
    from vla.cli import main

    assert main(["train", "--dataset", "nowhere", "--stream", "--out", "x"]) == 2
    assert "--stream streams expert episodes of --sim-tasks" in capsys.readouterr().err


def _observation(policy):
    from sim import make_env

    env = make_env("touch")
    obs, _ = env.reset(seed=0)
    env.close()
    return obs
