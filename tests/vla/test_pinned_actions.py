"""The shipped policy's actions on a fixed observation, pinned: a refactor of the inference path
must give the same actions (values recorded before the inference core was unified)."""

import numpy as np
import pytest

from tests.helpers import SHIPPED_POLICY
from vla.policy import VLAPolicy

STATE = np.array([0, -0.3, 0, -2.2, 0, 2.0, 0.8, 0.04], dtype=np.float32)
FIRST = [-0.017068, -0.203782, 0.023525, -2.286681, 0.00723, 2.204999, 0.805579, 0.039911]
LAST = [-0.04643, 0.104017, 0.077962, -2.276531, -0.045888, 2.538241, 0.838425, 0.039911]
RESIZED_FIRST = [-0.013806, -0.184136, 0.018577, -2.251156, -0.002428, 2.186137, 0.805579, 0.039911]


@pytest.fixture(scope="module")
def policy():
    return VLAPolicy.from_pretrained(SHIPPED_POLICY, device="cpu")


def _obs(cameras, size, rng):
    obs = {f"observation.images.{c}": rng.integers(0, 256, (size, size, 3), dtype=np.uint8) for c in cameras}
    return {**obs, "observation.state": STATE, "task": "pick up the red cube"}


def test_shipped_policy_gives_the_pinned_actions(policy):
    rng = np.random.default_rng(0)
    chunk = policy.predict_chunk(_obs(policy.model.config.cameras, 128, rng))
    assert chunk.shape == (10, 8) and chunk.dtype == np.float32
    np.testing.assert_allclose(chunk[0], FIRST, atol=2e-6)
    np.testing.assert_allclose(chunk[-1], LAST, atol=2e-6)
    # Frames of another size go through the one resize on the way in.
    small = policy.predict_chunk(_obs(policy.model.config.cameras, 96, rng))
    np.testing.assert_allclose(small[0], RESIZED_FIRST, atol=2e-6)
