"""Episodes rolled out in memory (`vla train --sim-tasks`) are the episodes `vla record` keeps:
the same seeds, frames, states, actions and instructions, and the same training cache."""

import numpy as np
import pytest
import torch

from vla.data import open_dataset
from vla.train.data import DemoCache
from vla.train.rollouts import SimDemos
from vla.types import ACTION, OBS_ENV_STATE, OBS_NAMED, OBS_STATE

# long recordings: four episodes recorded at the full image size, then rolled out again in memory
pytestmark = pytest.mark.slow
TASKS = ["touch", "pick"]


@pytest.fixture(scope="module")
def both(record_once):
    root = record_once(TASKS, 2, storage="images")  # lossless: frames comparable exactly
    return open_dataset(root), SimDemos(TASKS, 2, workers=2, progress=False)


def test_the_same_episodes_frames_and_statistics(both):
    dataset, demos = both
    assert demos.num_episodes == dataset.num_episodes == 4
    assert demos.num_frames == dataset.num_frames
    assert demos.cameras == dataset.cameras and demos.action_dim == dataset.action_dim and demos.fps == dataset.fps
    assert demos.features[ACTION]["names"] == dataset.features[ACTION]["names"]
    assert sorted(demos.tasks) == sorted(dataset.tasks)
    for key in (OBS_STATE, OBS_ENV_STATE, OBS_NAMED, ACTION):
        for stat in ("min", "max"):
            assert np.allclose(demos.stats[key][stat], dataset.stats[key][stat], atol=1e-6), (key, stat)


def test_the_same_training_cache(both):
    dataset, demos = both
    args = dict(state_keys=(OBS_STATE,), aux_keys=(OBS_ENV_STATE, OBS_NAMED))
    ours = demos.cache(20, 128, **args)
    theirs = DemoCache.from_dataset(dataset, 20, 128, progress=False, **args)
    assert torch.equal(ours.images, theirs.images)
    assert torch.equal(ours.state, theirs.state) and torch.equal(ours.actions, theirs.actions)
    assert torch.equal(ours.aux, theirs.aux) and torch.equal(ours.chunk_index, theirs.chunk_index)
    assert [ours.texts[i] for i in ours.text_index] == [theirs.texts[i] for i in theirs.text_index]
    assert demos.cache(20, 128, **args) is ours  # built once per set of arguments
    other = demos.cache(10, 128, state_keys=(OBS_STATE,), aux_keys=(OBS_NAMED,))
    assert other.images is ours.images  # one copy of the frames for every cache of one image size
    assert torch.equal(other.aux, ours.aux[:, -other.aux.shape[1]:]) and other.chunk_index.shape[1] == 10


def test_missing_features_and_bad_counts_are_refused(both):
    from vla.data.dataset import DatasetError

    _, demos = both
    with pytest.raises(DatasetError, match="observation.nothing"):
        demos.cache(20, 128, state_keys=("observation.state", "observation.nothing"))
    with pytest.raises(ValueError, match="episodes=0"):
        SimDemos(TASKS, 0)
