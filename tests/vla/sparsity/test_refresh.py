"""`refresh_every` (issue 20's untested claims): with token reuse, every refresh_every-th inference
re-encodes every patch, however still the scene, so that cached features of static patches cannot
drift for ever; between refreshes a still scene re-encodes nothing."""

import numpy as np
import pytest

from tests.vla.helpers import camera_obs, mini_model
from vla.robot import ConfigError
from vla.sparsity.policy import SparseVLAPolicy, SparsityConfig


@pytest.mark.parametrize("refresh_every", [1, 3, 4])
def test_a_still_scene_is_re_encoded_in_full_every_refresh_every_inferences(refresh_every):
    model = mini_model()
    sparse = SparseVLAPolicy(model, SparsityConfig(trigger_threshold=0.05, max_open_loop=0,
                                                   refresh_every=refresh_every))
    sparse.reset()
    obs, _ = camera_obs(model, 0)
    for _ in range(10):
        sparse.predict_chunk(obs)
    stats = list(sparse.step_stats)
    assert all(s["inference"] for s in stats)  # max_open_loop=0: every call infers
    every = stats[0]["patches_recomputed"] + stats[0]["patches_reused"]
    assert stats[0]["patches_recomputed"] == every  # nothing cached yet
    full = [i for i, s in enumerate(stats) if s["patches_recomputed"] == every]
    # The first inference encodes all (nothing cached); then each one where the count since the last
    # refresh reaches refresh_every: inferences refresh_every - 1, 2 * refresh_every - 1, ... (from 0).
    assert full == sorted({0, *range(refresh_every - 1, 10, refresh_every)})
    assert all(s["patches_recomputed"] == 0 for i, s in enumerate(stats) if i not in full)


def test_refresh_every_below_one_is_refused():
    with pytest.raises(ConfigError, match="refresh_every=0"):
        SparsityConfig(refresh_every=0)
    np.testing.assert_equal(SparsityConfig().refresh_every, 20)
