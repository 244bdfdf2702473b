import json

import numpy as np
import pytest
import torch

from tests.vla.helpers import MINI, TEXTS, mini_batch, mini_model
from vla.model.action_tokenizer import ActionTokenizer
from vla.model.backbone import build_text_tokenizer, tiny_backbone
from vla.model.config import VLAConfig, load_model_config
from vla.model.vla import Batch, CheckpointError, VLAModel, new_model
from vla.policy import VLAPolicy


# --- action tokenizer -------------------------------------------------------------------------------
def test_action_tokenizer_round_trip_within_half_a_bin():
    rng = np.random.default_rng(0)
    low, high = np.array([-2.9, -0.5, 0.0]), np.array([2.9, 1.5, 0.04])
    tok = ActionTokenizer(low, high, bins=256, first_id=1000)
    values = rng.uniform(low, high, size=(10_000, 3))
    ids = tok.encode(values)
    assert ids.min() >= 1000 and ids.max() < 1256
    assert np.all(np.abs(tok.decode(ids) - values) <= tok.bin_width / 2 + 1e-12)
    # Outside [low, high] values are clipped to the end bins, never wrapped.
    assert tok.to_bins(np.array([[-10.0, 10.0, 0.02]])).tolist() == [[0, 255, 128]]
    with pytest.raises(ValueError, match="outside the action range"):
        tok.decode(np.array([[999, 1000, 1001]]))
    assert ActionTokenizer.from_dict(json.loads(json.dumps(tok.to_dict()))).to_dict() == tok.to_dict()


def test_torch_binning_equals_the_action_tokenizer():
    model = mini_model()
    x = torch.rand(1000, 6) * 5 - 2.5
    ours = model._bins(x, model.action_low, model.action_high).numpy()
    assert np.array_equal(ours, model.action_tok.to_bins(x.numpy()))


def test_action_tokens_are_added_after_the_text_vocabulary():
    tokenizer = build_text_tokenizer(TEXTS)
    before = len(tokenizer)
    text_ids = tokenizer("pick up the red cube", add_special_tokens=False)["input_ids"]
    model = mini_model()
    assert model.first_value_id >= before
    assert model.tokenizer("pick up the red cube", add_special_tokens=False)["input_ids"] == text_ids
    assert model.backbone.get_input_embeddings().num_embeddings >= len(model.tokenizer)
    assert len(model.query_ids) == 6 and min(model.query_ids) >= model.first_value_id + 256


# --- model ------------------------------------------------------------------------------------------
def test_forward_backward_reaches_vision_and_action_tokens():
    model = mini_model()
    loss, metrics = model(mini_batch(model))
    loss.backward()
    assert np.isfinite(metrics["loss"]) and loss.item() == pytest.approx(np.log(256), rel=0.2)
    grads = {n: p.grad for n, p in model.named_parameters() if p.grad is not None}
    assert any("vision" in n for n in grads)
    emb = model.backbone.get_input_embeddings().weight.grad
    assert emb[model.first_value_id : model.first_value_id + 256].abs().sum() > 0


def test_overfits_a_tiny_batch_in_both_decoding_modes():
    model = mini_model()
    batch = mini_batch(model)
    twice = Batch(batch.images.repeat_interleave(2, 0), [t for t in batch.tasks for _ in range(2)],
                  batch.state.repeat_interleave(2, 0), batch.actions.repeat_interleave(2, 0))
    opt = torch.optim.AdamW(model.parameters(), lr=3e-3)
    first = None
    for _ in range(120):
        loss, _ = model(twice)  # every sample once in each layout
        first = first or loss.item()
        opt.zero_grad()
        loss.backward()
        opt.step()
    assert loss.item() < first / 10
    model.eval()
    half_bin = model.action_tok.bin_width / 2 + 1e-6
    for mode in ("parallel", "autoregressive"):
        pred = model.predict(Batch(batch.images, batch.tasks, batch.state), mode)
        assert pred.shape == batch.actions.shape
        assert np.all(np.abs((pred - batch.actions).numpy()) <= half_bin), mode


def test_parallel_fraction_picks_which_samples_train_which_mode():
    model = mini_model().eval()
    batch = mini_batch(model, B=4)
    _, both = model(batch)
    _, par = model(batch, parallel_fraction=1.0)
    _, auto = model(batch, parallel_fraction=0.0)
    assert np.isfinite(both["acc_parallel"]) and np.isfinite(both["acc_autoregressive"])
    assert np.isfinite(par["acc_parallel"]) and np.isnan(par["acc_autoregressive"])
    assert np.isnan(auto["acc_parallel"]) and np.isfinite(auto["acc_autoregressive"])
    with pytest.raises(ValueError, match="parallel_fraction=1.5"):
        model(batch, parallel_fraction=1.5)


def test_soft_labels_charge_a_near_miss_less_than_a_far_one():
    from vla.model.vla import action_loss

    target = torch.tensor([[100, 7]])
    logits = torch.randn(1, 2, 256, generator=torch.Generator().manual_seed(0))  # not the global stream
    exact = torch.nn.functional.cross_entropy(logits[0], target[0])
    assert action_loss(logits, target).item() == pytest.approx(exact.item())
    assert action_loss(logits, target, 1e-3).item() == pytest.approx(exact.item(), rel=1e-5)  # sigma -> 0: one-hot

    def certain(bins: list[int]) -> torch.Tensor:
        return torch.nn.functional.one_hot(torch.tensor([bins]), 256).float() * 30

    near, far = action_loss(certain([101, 8]), target, 2.0), action_loss(certain([140, 47]), target, 2.0)
    assert near < far and action_loss(certain([100, 7]), target, 2.0) < near
    # one-hot CE charges both misses the same
    one_hot_near, one_hot_far = action_loss(certain([101, 8]), target), action_loss(certain([140, 47]), target)
    assert one_hot_near.item() == pytest.approx(one_hot_far.item())


@pytest.mark.parametrize("mode", ["parallel", "autoregressive"])
def test_decoding_is_the_greedy_choice_of_one_uncached_forward_pass(mode):
    """Each decoded bin is the best one at its position when the whole sequence (prefix, then the queries
    or the decoded tokens themselves) goes through the model in one pass without a cache: a wrong query,
    position, KV cache entry or fed-back token shows as a bin that pass does not rank first."""
    model = mini_model().eval()
    batch = mini_batch(model, B=3)
    bins = model.decode(batch, mode)
    assert bins.shape == (3, 4 * 6) and bins.unique().numel() > 1  # an untrained model is not constant
    ids, mask = model.prefix(batch)
    P, N = ids.shape[1], model.config.num_action_tokens
    tail = model.queries(3) if mode == "parallel" else bins + model.first_value_id
    with torch.no_grad():
        h = model.language(torch.cat([ids, tail], 1), torch.cat([mask, torch.ones_like(tail)], 1),
                           model.pixel_values(batch.images)).last_hidden_state
        # Parallel: the query at P + j reads action j; autoregressive: position P - 1 + j predicts token j.
        logits = model.head_outputs(h[:, P : P + N] if mode == "parallel" else h[:, P - 1 : P - 1 + N]).float()
    chosen = logits.gather(-1, bins[..., None].long())[..., 0]
    assert torch.all(chosen >= logits.max(-1).values - 1e-4), (chosen - logits.max(-1).values).min()


def test_save_load_gives_identical_actions_and_never_pickles(tmp_path):
    model = mini_model().eval()
    batch = mini_batch(model, B=2)
    model.save_pretrained(tmp_path / "ckpt")
    files = sorted(p.name for p in (tmp_path / "ckpt").iterdir())
    assert all(f.endswith((".json", ".safetensors")) for f in files), files
    loaded = VLAModel.from_pretrained(tmp_path / "ckpt")
    for mode in ("parallel", "autoregressive"):
        assert torch.equal(model.predict(batch, mode), loaded.predict(batch, mode))


def test_checkpoint_of_another_config_names_the_mismatch(tmp_path):
    mini_model(action_dim=6).save_pretrained(tmp_path / "six")
    mini_model(action_dim=7).save_pretrained(tmp_path / "seven")
    (tmp_path / "six" / "model.safetensors").write_bytes((tmp_path / "seven" / "model.safetensors").read_bytes())
    with pytest.raises(CheckpointError, match="shape mismatches .*embed_tokens"):
        VLAModel.from_pretrained(tmp_path / "six")
    with pytest.raises(CheckpointError, match="not a VLA checkpoint: missing"):
        VLAModel.from_pretrained(tmp_path)


def test_policy_checks_its_inputs_and_resizes_images():
    policy = VLAPolicy(mini_model())
    obs = {"observation.images.top": np.zeros((48, 48, 3), np.uint8),
           "observation.images.wrist": np.zeros((48, 48, 3), np.uint8),
           "observation.state": np.zeros(6, np.float32), "task": "pick up the red cube"}
    chunk = policy.predict_chunk(obs)  # 48x48 images are resized to the tower's 64x64
    assert chunk.shape == (policy.n_action_steps, 6) and chunk.dtype == np.float32
    with pytest.raises(ValueError, match=r"cameras \['top'\]; this policy was trained with \['top', 'wrist'\]"):
        policy.predict_chunk({k: v for k, v in obs.items() if k != "observation.images.wrist"})
    with pytest.raises(ValueError, match="cameras .*'side'"):
        policy.predict_chunk({**obs, "observation.images.side": obs["observation.images.top"]})
    with pytest.raises(ValueError, match="expected 6 finite values, got 7"):
        policy.predict_chunk({**obs, "observation.state": np.zeros(7, np.float32)})
    with pytest.raises(ValueError, match="expected uint8"):
        policy.predict_chunk({**obs, "observation.images.top": np.zeros((48, 48, 3), np.float32)})
    with pytest.raises(ValueError, match="non-empty 'task'"):
        policy.predict_chunk({**obs, "task": ""})


# --- backbones from local Hugging Face checkpoints ---------------------------------------------------
@pytest.mark.parametrize("family", ["smolvlm", "paligemma"])
def test_local_hf_checkpoint_of_each_family_loads_trains_and_saves(tmp_path, family):
    cfg = VLAConfig(family=family, **MINI, cameras=["top", "wrist"], state_dim=6, action_dim=6, chunk_size=4,
                    n_action_steps=2)
    tokenizer = build_text_tokenizer(TEXTS)
    hf = tiny_backbone(cfg, tokenizer)
    hf.save_pretrained(tmp_path / "hf")  # a local checkpoint, as a user would have one
    tokenizer.save_pretrained(tmp_path / "hf")
    loaded_cfg = load_model_config(tmp_path / "hf", cameras=["top", "wrist"], state_dim=6, action_dim=6,
                                   chunk_size=4, n_action_steps=2)
    assert loaded_cfg.family == family and loaded_cfg.backbone_path == str(tmp_path / "hf")
    model = new_model(loaded_cfg, [], -np.ones(6), np.ones(6), -np.ones(6), np.ones(6))
    assert type(model.backbone).__name__ == type(hf).__name__
    batch = mini_batch(model, B=2)
    loss, _ = model(batch)
    loss.backward()
    model.eval().save_pretrained(tmp_path / "vla")
    again = VLAModel.from_pretrained(tmp_path / "vla")
    assert torch.equal(model.predict(batch), again.predict(batch))


def test_unsupported_family_is_refused(tmp_path):
    (tmp_path / "config.json").write_text(json.dumps({"model_type": "qwen2_5_vl"}))
    with pytest.raises(ValueError, match="'qwen2_5_vl' is not a supported VLM family; supported: smolvlm"):
        load_model_config(tmp_path)


def test_old_chunk_keys_load_under_lerobot_names():
    from vla.robot import ConfigError

    cfg = VLAConfig.from_dict({"chunk_length": 6, "execute_steps": 3})
    assert (cfg.chunk_size, cfg.n_action_steps) == (6, 3)
    with pytest.raises(ConfigError, match="both"):
        VLAConfig.from_dict({"chunk_length": 6, "chunk_size": 6})


def test_an_instruction_longer_than_max_text_tokens_is_cut_with_a_warning(caplog):
    import logging

    model = mini_model(max_text_tokens=8)
    long = " ".join(["pick up the red cube"] * 4)
    with caplog.at_level(logging.WARNING, logger="vla.model.vla"):
        ids, mask = model.text_ids([long])
        model.text_ids([long])  # tokenized once: one warning
        model.text_ids(["pick up the red cube"])
    assert ids.shape == (1, 8) and bool(mask.all())
    warnings = [r.getMessage() for r in caplog.records]
    assert len(warnings) == 1 and "cut to max_text_tokens=8" in warnings[0] and "pick up the red cube" in warnings[0]
