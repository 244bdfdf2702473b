"""Action heads and action positions: bins per value (the language model's head), bins per step,
continuous (L1) per value or per step; and the gripper binned over its physical range.

Each head trains (the loss falls on a tiny batch), saves and reloads to identical actions, and
decodes through every engine of the one decoding loop (library, pruned, static)."""

import numpy as np
import pytest
import torch

from tests.vla.helpers import mini_batch, mini_model
from vla.model.config import VLAConfig
from vla.model.vla import CheckpointError, VLAModel
from vla.robot import ConfigError

HEADS = [("bins", "per_step"), ("continuous", "per_dim"), ("continuous", "per_step")]


def head_model(head: str, tokens: str, **kw) -> VLAModel:
    return mini_model(action_head=head, action_tokens=tokens, **kw)


@pytest.mark.parametrize(("head", "tokens"), HEADS)
def test_each_head_learns_a_tiny_batch(head, tokens):
    model = head_model(head, tokens)
    batch = mini_batch(model, B=4)
    with torch.no_grad():
        before = (model.eval().predict(batch) - batch.actions).abs().mean().item()
    model.train()
    opt = torch.optim.AdamW(model.parameters(), lr=3e-3)
    losses = []
    for _ in range(80):
        loss, metrics = model(batch, parallel_fraction=1.0)
        opt.zero_grad()
        loss.backward()
        opt.step()
        losses.append(metrics["loss"])
    assert losses[-1] < 0.5 * losses[0], (head, tokens, losses[0], losses[-1])
    # the decoded chunk comes close to the demonstrated one (an untrained head is ~0.5 off)
    error = (model.eval().predict(batch) - batch.actions).abs().mean().item()
    assert error < 0.2 and error < 0.5 * before, (before, error)


@pytest.mark.parametrize(("head", "tokens"), HEADS)
def test_each_head_saves_and_reloads_to_identical_actions(head, tokens, tmp_path):
    model = head_model(head, tokens).eval()
    batch = mini_batch(model, B=2)
    model.save_pretrained(tmp_path / "ckpt")
    assert (tmp_path / "ckpt" / "action_head.safetensors").is_file()
    loaded = VLAModel.from_pretrained(tmp_path / "ckpt")
    assert loaded.config.action_head == head and loaded.config.action_tokens == tokens
    assert torch.equal(model.predict(batch), loaded.predict(batch))
    (tmp_path / "ckpt" / "action_head.safetensors").unlink()
    with pytest.raises(CheckpointError, match=f"{head} head with {tokens} tokens.*action_head.safetensors"):
        VLAModel.from_pretrained(tmp_path / "ckpt")


@pytest.mark.parametrize(("head", "tokens"), HEADS)
def test_sequence_length_and_codes_follow_the_head(head, tokens):
    model = head_model(head, tokens).eval()
    K, D = model.config.chunk_size, model.config.action_dim
    assert model.config.num_action_tokens == (K if tokens == "per_step" else K * D)
    assert model.queries(1).shape == (1, model.config.num_action_tokens)
    codes = model.decode(mini_batch(model, B=3))
    assert codes.shape == (3, K * D)
    assert codes.is_floating_point() == (head == "continuous")


@pytest.mark.parametrize(("head", "tokens"), HEADS)
def test_every_engine_gives_the_same_codes(head, tokens):
    """Library forward, pruning with every token kept, and the static engine agree."""
    from vla.model.fast import FastVLA
    from vla.sparsity.encoder import SparseVisionEncoder

    model = head_model(head, tokens).eval()
    batch = mini_batch(model, B=1)
    want = model.decode(batch)
    features, _ = SparseVisionEncoder(model.hf).encode(model.pixel_values(batch.images), ["top", "wrist"])
    T = features.shape[1]
    pruned = model.decode(batch, image_features=features, keep=[torch.arange(T)] * 2)
    torch.testing.assert_close(pruned, want, atol=1e-5, rtol=0)
    static = FastVLA(model, "cpu", compile=False).predict(batch, "parallel")
    np.testing.assert_allclose(static, model.predict(batch)[0].numpy(), atol=1e-5)


def test_autoregressive_decoding_is_refused_where_there_are_no_value_tokens():
    with pytest.raises(ConfigError, match="autoregressive.*bins.*per_dim"):
        VLAConfig(decoding="autoregressive", action_head="continuous")
    model = head_model("bins", "per_step")
    with pytest.raises(ValueError, match="decode in parallel"):
        model.decode(mini_batch(model, B=1), "autoregressive")
    from vla.policy import VLAPolicy

    with pytest.raises(ValueError, match="use --decoding parallel"):  # refused when the policy loads
        VLAPolicy(model, decoding="autoregressive")
    with pytest.raises(ValueError, match="parallel only"):
        model(mini_batch(model, B=2), parallel_fraction=0.5)
    with pytest.raises(ConfigError, match="action_head='mlp'"):
        VLAConfig(action_head="mlp")


def test_physical_gripper_is_absolute_and_the_rest_relative():
    model = mini_model(gripper="physical", gripper_dim=5).eval()
    assert model.relative.tolist() == [1.0] * 5 + [0.0]
    batch = mini_batch(model, B=2)
    codes = model.decode(batch)
    shifted = type(batch)(batch.images, batch.tasks, batch.state + 0.1)
    # the same codes with another state: joints move with the state, the gripper does not
    moved = model.values_from_codes(codes, shifted.state) - model.values_from_codes(codes, batch.state)
    torch.testing.assert_close(moved[..., :5], torch.full_like(moved[..., :5], 0.1))
    assert torch.all(moved[..., 5] == 0)
    with pytest.raises(ConfigError, match="gripper_dim"):
        VLAConfig(gripper="physical")


def test_aux_targets_train_the_backbone_but_never_touch_the_actions():
    from vla.model.inputs import Batch

    model = mini_model(aux_targets=["observation.environment_state"], aux_dim=5)
    batch = mini_batch(model, B=4)
    aux = torch.randn(4, 5, generator=torch.Generator().manual_seed(1))
    with_aux = Batch(batch.images, batch.tasks, batch.state, batch.actions, aux)
    loss_aux, m_aux = model(with_aux, parallel_fraction=1.0)
    loss, m = model(batch, parallel_fraction=1.0)
    # causal attention: the extra position after the actions leaves the action loss unchanged
    assert m["acc_parallel"] == m_aux["acc_parallel"] and np.isnan(m["aux_l1"]) and m_aux["aux_l1"] > 0
    assert loss_aux.item() == pytest.approx(loss.item() + m_aux["aux_l1"], rel=1e-5)
    loss_aux.backward()  # the grounding loss reaches the vision tower
    assert model.hf.model.vision_model.embeddings.patch_embedding.weight.grad.abs().sum() > 0
    # inference never runs the aux head: poisoning it changes nothing
    model.eval()
    want = model.predict(batch)
    with torch.no_grad():
        model.aux_head.proj.weight.fill_(float("nan"))
    assert torch.equal(model.predict(batch), want)


def test_aux_targets_need_their_features_and_are_no_inputs():
    with pytest.raises(ConfigError, match="also state_keys"):
        VLAConfig(aux_targets=["observation.state"])


def test_the_conv_stem_keeps_the_patch_grid_learns_and_reloads_to_identical_actions(tmp_path):
    """`vision_stem: conv` (issue 29's perception switch): the same token grid as the patch projection,
    so the connector, the engines and event-sparse reuse read it unchanged; it saves and reloads."""
    from vla.model.backbone import ConvStem
    from vla.model.fast import FastVLA
    from vla.sparsity.encoder import SparseVisionEncoder

    model = mini_model(vision_stem="conv", action_head="continuous", action_tokens="per_step")
    stem = model.hf.model.vision_model.embeddings.patch_embedding
    assert isinstance(stem, ConvStem)
    patch = mini_model().hf.model.vision_model.embeddings.patch_embedding
    pixels = torch.rand(1, 3, 64, 64)
    assert stem(pixels).shape == patch(pixels).shape  # (1, width, grid, grid)
    batch = mini_batch(model, B=4)
    opt = torch.optim.AdamW(model.parameters(), lr=3e-3)
    first = None
    for _ in range(30):
        loss, metrics = model(batch, parallel_fraction=1.0)
        opt.zero_grad()
        loss.backward()
        assert stem.layers[0].weight.grad.abs().sum() > 0  # the stem learns
        opt.step()
        first = first if first is not None else metrics["loss"]
    assert metrics["loss"] < 0.7 * first
    model.eval()
    model.save_pretrained(tmp_path / "ckpt")
    loaded = VLAModel.from_pretrained(tmp_path / "ckpt")
    assert loaded.config.vision_stem == "conv"
    assert torch.equal(model.predict(batch), loaded.predict(batch))
    one = mini_batch(model, B=1)
    features, _ = SparseVisionEncoder(model.hf).encode(model.pixel_values(one.images), ["top", "wrist"])
    pruned = model.decode(one, image_features=features, keep=[torch.arange(features.shape[1])] * 2)
    torch.testing.assert_close(pruned, model.decode(one), atol=1e-5, rtol=0)
    static = FastVLA(model, "cpu", compile=False).predict(one, "parallel")
    np.testing.assert_allclose(static, model.predict(one)[0].numpy(), atol=1e-5)


def test_a_stem_that_cannot_be_built_is_refused_when_the_config_loads():
    with pytest.raises(ConfigError, match="vision_stem='unet'"):
        VLAConfig(vision_stem="unet")
    with pytest.raises(ConfigError, match="power of two"):
        VLAConfig(vision_stem="conv", vision={"patch_size": 12}, image_size=96)
    with pytest.raises(ConfigError, match="keeps its own"):
        VLAConfig(vision_stem="conv", backbone_path="/some/checkpoint")
