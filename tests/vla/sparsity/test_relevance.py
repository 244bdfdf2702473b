"""Which patches the shipped policy's actions depend on, on real MuJoCo scenes: the weights follow the
cube the instruction names (issue 33's "the relevance weights follow the instruction")."""

import pytest
import torch

from scripts.relevance import cube_patches
from sim import make_env
from sim.tabletop.scene import COLORS
from tests.helpers import SHIPPED_POLICY
from vla.model.inputs import observation_batch
from vla.model.vla import VLAModel
from vla.sparsity.relevance import action_saliency, instruction_relevance


@pytest.fixture(scope="module")
def model():
    torch.set_num_threads(1)
    return VLAModel.from_pretrained(SHIPPED_POLICY)


def test_the_weights_follow_the_cube_the_instruction_names(model):
    env = make_env("touch")
    named_first = 0
    for seed in range(3):
        obs, _ = env.reset(seed=seed)
        patches = {c: cube_patches(env, c) for c in COLORS}
        for named in COLORS:
            batch = observation_batch({**obs, "task": f"touch the {named} cube"}, model.config, model.vision_size,
                                      model.device)
            told = instruction_relevance(model, batch)[0].numpy()  # the scene camera
            share = {c: told[patches[c]].sum() for c in COLORS}
            named_first += max(share, key=share.get) == named
    assert named_first >= 8, named_first  # of 9: change the named cube and the weight moves with it
    env.close()


def test_saliency_is_a_distribution_per_camera_and_refuses_a_batch(model):
    env = make_env("pick")
    obs, _ = env.reset(seed=0)
    batch = observation_batch(obs, model.config, model.vision_size, model.device)
    s = action_saliency(model, batch)
    assert s.shape == (2, 8, 8) and torch.allclose(s.sum((1, 2)), torch.ones(2)) and (s >= 0).all()
    assert not any(p.grad is not None for p in model.parameters())  # inference leaves no gradients behind
    two = type(batch)(batch.images.expand(2, -1, -1, -1, -1), batch.tasks * 2, batch.state.expand(2, -1))
    with pytest.raises(ValueError, match="batch of one"):
        action_saliency(model, two)
    env.close()
