"""The shipped policy's actions on a fixed observation, pinned: a refactor of the inference path
must give the same actions (values recorded when this policy was shipped: continuous head, 2026-11-27;
the policy before it was pinned the same way before the inference core was unified)."""

import numpy as np
import pytest

from tests.helpers import SHIPPED_POLICY
from vla.policy import VLAPolicy

STATE = np.array([0, -0.3, 0, -2.2, 0, 2.0, 0.8, 0.04], dtype=np.float32)
FIRST = [-0.019884, -0.251188, 0.013581, -2.164969, -0.025782, 2.002765, 0.810772, 0.031833]
LAST = [0.028768, -0.411319, -0.025745, -2.219926, 0.02225, 1.894381, 0.775592, 0.0]
RESIZED_FIRST = [-0.01843, -0.227514, 0.014768, -2.16407, -0.025103, 2.023693, 0.813167, 0.039471]


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
