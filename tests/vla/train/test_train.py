import csv
import json
import shutil

import numpy as np
import pytest
import torch
from lerobot.datasets.lerobot_dataset import LeRobotDataset

from tests.helpers import SHIPPED_POLICY
from tests.vla.helpers import TRAIN_MINI, assert_same_checkpoint
from vla.cli import main
from vla.model.vla import VLAModel
from vla.policy import VLAPolicy
from vla.train.trainer import STATE_FILE, TrainConfig, latest_checkpoint, train


def test_trains_on_other_cameras_and_dims_and_the_policy_runs(so101_like, tmp_path):
    out = tmp_path / "policy"
    cfg = TrainConfig(steps=6, batch_size=4, warmup_steps=2, checkpoint_every=3, log_every=2)
    summary = train(so101_like, out, "tiny", cfg, progress=False, model_overrides=TRAIN_MINI)
    assert summary["steps"] == 6 and summary["episodes"] == 3 and summary["frames"] == 24
    shipped = json.loads((SHIPPED_POLICY / "train_info.json").read_text())  # the fields README and vla.policy read
    newer = {"time_budget_s", "mixed_precision"}  # TrainConfig fields added after the shipped policy trained
    added = {"shipped_checkpoint"}  # train_info fields added after the shipped policy trained
    assert set(summary) == set(shipped) | added and set(summary["train_config"]) == set(shipped["train_config"]) | newer
    assert summary["shipped_checkpoint"] == "step_0000006"  # no selection: the newest
    assert json.loads((out / "train_info.json").read_text()) == summary
    assert sorted(p.name for p in (out / "checkpoints").iterdir()) == ["step_0000003", "step_0000006"]
    rows = list(csv.DictReader((out / "metrics.csv").open()))
    assert [int(r["step"]) for r in rows] == [2, 4, 6] and all(np.isfinite(float(r["loss"])) for r in rows)
    policy = VLAPolicy.from_pretrained(out)
    assert policy.metadata["cameras"] == ["top", "wrist"] and policy.metadata["action_dim"] == 6
    assert policy.metadata["joint_names"][0] == "m0.pos"
    obs = {"observation.images.top": np.zeros((24, 32, 3), np.uint8),
           "observation.images.wrist": np.zeros((16, 16, 3), np.uint8),
           "observation.state": np.zeros(6, np.float32), "task": "move the brick 1"}
    assert policy.predict_chunk(obs).shape == (policy.n_action_steps, 6)


def test_resume_continues_from_the_newest_checkpoint(so101_like, tmp_path):
    out = tmp_path / "policy"
    cfg = TrainConfig(steps=4, batch_size=4, warmup_steps=1, checkpoint_every=2, log_every=2)
    train(so101_like, out, "tiny", cfg, progress=False, model_overrides=TRAIN_MINI)
    with pytest.raises(FileExistsError, match="--resume"):
        train(so101_like, out, "tiny", cfg, progress=False, model_overrides=TRAIN_MINI)
    cfg.steps = 6
    summary = train(so101_like, out, "tiny", cfg, resume=True, progress=False)
    assert summary["resumed_from_step"] == 4
    rows = list(csv.DictReader((out / "metrics.csv").open()))
    assert [int(r["step"]) for r in rows] == [2, 4, 6]


def test_an_interrupted_run_resumed_equals_the_uninterrupted_one(so101_like, tmp_path):
    """4 steps straight vs 2 + resume 2: the same weights, optimizer state and LR schedule, bit for bit."""
    out = tmp_path / "policy"
    cfg = TrainConfig(steps=4, batch_size=4, warmup_steps=1, weight_decay=0.1, checkpoint_every=2, log_every=1)
    train(so101_like, out, "tiny", cfg, progress=False, model_overrides=TRAIN_MINI)
    state = torch.load(latest_checkpoint(out) / STATE_FILE, weights_only=True)
    assert [g["weight_decay"] for g in state["optimizer"]["param_groups"]] == [0.1, 0.0]  # norms, biases: none
    straight = tmp_path / "straight"
    shutil.copytree(latest_checkpoint(out), straight)
    shutil.rmtree(latest_checkpoint(out))  # as if the run had died right after step 2
    assert train(so101_like, out, "tiny", cfg, resume=True, progress=False)["resumed_from_step"] == 2
    assert_same_checkpoint(straight, latest_checkpoint(out), "model.safetensors")
    rows = [(r["step"], r["loss"], r["lr"]) for r in csv.DictReader((out / "metrics.csv").open())]
    assert rows[2:4] == rows[4:6] and [r[0] for r in rows] == ["1", "2", "3", "4", "3", "4"]


def test_lora_checkpoints_are_plain_models(so101_like, tmp_path):
    out = tmp_path / "lora"
    cfg = TrainConfig(steps=2, batch_size=4, warmup_steps=1, checkpoint_every=2, lora=True, lora_rank=4)
    train(so101_like, out, "tiny", cfg, progress=False, model_overrides=TRAIN_MINI)
    model = VLAModel.from_pretrained(out)
    assert "peft" not in type(model.backbone).__module__
    assert not any("lora" in k for k in json.dumps(list(model.state_dict())).split('"'))


def test_vla_train_cli_rejects_a_dataset_without_actions(tmp_path, capsys):
    features = {"observation.state": {"dtype": "float32", "shape": (2,), "names": ["a", "b"]},
                "observation.images.cam": {"dtype": "image", "shape": (8, 8, 3), "names": ["h", "w", "c"]}}
    ds = LeRobotDataset.create("x/noaction", fps=10, features=features, root=tmp_path / "noaction", use_videos=False)
    ds.add_frame({"observation.state": np.zeros(2, np.float32),
                  "observation.images.cam": np.zeros((8, 8, 3), np.uint8), "task": "t"})
    ds.save_episode()
    ds.finalize()
    assert main(["train", "--dataset", str(tmp_path / "noaction"), "--out", str(tmp_path / "p"), "--steps", "1"]) == 2
    assert "lacks feature(s) ['action']" in capsys.readouterr().err


def test_training_options_that_would_leave_the_policy_untrained_are_refused(so101_like, tmp_path):
    with pytest.raises(ValueError, match="label_sigma=-1"):
        TrainConfig(label_sigma=-1)
    with pytest.raises(ValueError, match="parallel_fraction=2"):
        TrainConfig(parallel_fraction=2)
    cfg = TrainConfig(steps=2, batch_size=4, parallel_fraction=1.0)
    with pytest.raises(ValueError, match="leaves the policy's decoding mode .'autoregressive'. untrained"):
        train(so101_like, tmp_path / "p", "tiny", cfg, progress=False,
              model_overrides={**TRAIN_MINI, "decoding": "autoregressive"})
    summary = train(so101_like, tmp_path / "q", "tiny", TrainConfig(steps=2, batch_size=4, warmup_steps=1,
                    parallel_fraction=1.0, label_sigma=2.0), progress=False, model_overrides=TRAIN_MINI)
    assert summary["train_config"]["label_sigma"] == 2.0
    rows = list(csv.DictReader((tmp_path / "q" / "metrics.csv").open()))
    assert rows[-1]["acc_autoregressive"] == "nan" and np.isfinite(float(rows[-1]["loss"]))
    assert VLAPolicy.from_pretrained(tmp_path / "q").decoding == "parallel"
    with pytest.raises(ValueError, match="trained for parallel decoding only .* --decoding parallel"):
        VLAPolicy.from_pretrained(tmp_path / "q", decoding="autoregressive")  # it never learned that mode


def test_vla_train_cli_sets_chunk_size_and_executed_steps(so101_like, tmp_path):
    out = tmp_path / "k4"
    assert main(["train", "--dataset", str(so101_like), "--out", str(out), "--steps", "1", "--chunk-size", "4",
                 "--n-action-steps", "2", "--quiet"]) == 0
    config = json.loads((out / "train_info.json").read_text())["policy_config"]
    assert config["chunk_size"] == 4 and config["n_action_steps"] == 2
    assert main(["train", "--dataset", str(so101_like), "--out", str(tmp_path / "bad"), "--steps", "1",
                 "--chunk-size", "4", "--n-action-steps", "5", "--quiet"]) != 0  # cannot execute more than K


def test_vla_train_cli_picks_the_head_tokens_and_state(so101_like, tmp_path, capsys):
    out = tmp_path / "oft"
    assert main(["train", "--dataset", str(so101_like), "--out", str(out), "--steps", "1", "--chunk-size", "4",
                 "--action-head", "continuous", "--action-tokens", "per_step", "--parallel-fraction", "1",
                 "--state-keys", "observation.state,observation.environment_state", "--quiet"]) == 0
    config = json.loads((out / "train_info.json").read_text())["policy_config"]
    assert (config["action_head"], config["action_tokens"]) == ("continuous", "per_step")
    assert config["state_keys"] == ["observation.state", "observation.environment_state"] and config["state_dim"] == 9
    assert (out / "action_head.safetensors").is_file()
    # the so101-like joints are m0..m5: no gripper by name, so a physical gripper cannot be placed
    assert main(["train", "--dataset", str(so101_like), "--out", str(tmp_path / "g"), "--steps", "1",
                 "--gripper", "physical", "--quiet"]) == 2
    assert "gripper='physical' needs gripper_dim" in capsys.readouterr().err


def test_state_keys_add_the_privileged_state_to_the_tokens_and_are_checked(so101_like, tmp_path):
    """The oracle-perception diagnostic: observation.environment_state appended to the state tokens."""
    from vla.data import DatasetError

    keys = ["observation.state", "observation.environment_state"]
    cfg = TrainConfig(steps=2, batch_size=4, warmup_steps=1, checkpoint_every=2)
    train(so101_like, tmp_path / "oracle", "tiny", cfg, progress=False,
          model_overrides={**TRAIN_MINI, "state_keys": keys})
    policy = VLAPolicy.from_pretrained(tmp_path / "oracle")
    assert policy.model.config.state_keys == keys and policy.model.config.state_dim == 9
    obs = {"observation.images.top": np.zeros((24, 32, 3), np.uint8),
           "observation.images.wrist": np.zeros((16, 16, 3), np.uint8),
           "observation.state": np.zeros(6, np.float32), "task": "move the brick 0"}
    with pytest.raises(ValueError, match="lacks \\['observation.environment_state'\\]"):
        policy.predict_chunk(obs)
    chunk = policy.predict_chunk({**obs, "observation.environment_state": np.ones(3, np.float32)})
    assert chunk.shape == (policy.n_action_steps, 6)  # actions stay joint targets, relative to the joints only
    with pytest.raises(DatasetError, match="no feature 'observation.velocity'"):
        train(so101_like, tmp_path / "bad", "tiny", cfg, progress=False,
              model_overrides={**TRAIN_MINI, "state_keys": ["observation.state", "observation.velocity"]})


def test_aux_targets_train_with_the_dataset_features_and_are_saved(so101_like, tmp_path):
    from vla.data import DatasetError

    cfg = TrainConfig(steps=2, batch_size=4, warmup_steps=1, checkpoint_every=2, log_every=1)
    out = tmp_path / "aux"
    train(so101_like, out, "tiny", cfg, progress=False,
          model_overrides={**TRAIN_MINI, "aux_targets": ["observation.environment_state"]})
    assert (out / "aux_head.safetensors").is_file()
    rows = list(csv.DictReader((out / "metrics.csv").open()))
    assert all(float(r["aux_l1"]) > 0 for r in rows)
    policy = VLAPolicy.from_pretrained(out)
    assert policy.model.config.aux_dim == 3 and policy.model.config.state_keys == ["observation.state"]
    obs = {"observation.images.top": np.zeros((24, 32, 3), np.uint8),
           "observation.images.wrist": np.zeros((16, 16, 3), np.uint8),
           "observation.state": np.zeros(6, np.float32), "task": "move the brick 0"}
    assert policy.predict_chunk(obs).shape == (policy.n_action_steps, 6)  # no privileged input at run time
    with pytest.raises(DatasetError, match="aux_targets \\['observation.velocity'\\]"):
        train(so101_like, tmp_path / "bad", "tiny", cfg, progress=False,
              model_overrides={**TRAIN_MINI, "aux_targets": ["observation.velocity"]})


def test_init_fine_tunes_a_policy_keeping_its_config(so101_like, tmp_path):
    first = tmp_path / "first"
    cfg = TrainConfig(steps=2, batch_size=4, warmup_steps=1, checkpoint_every=2)
    train(so101_like, first, "tiny", cfg, progress=False, model_overrides={**TRAIN_MINI, "chunk_size": 4})
    tuned = tmp_path / "tuned"
    summary = train(so101_like, tuned, "tiny", cfg, progress=False, init=first)
    assert summary["model"] == str(first) and summary["resumed_from_step"] == 0  # a fresh run, from the policy
    assert VLAModel.from_pretrained(tuned).config == VLAModel.from_pretrained(first).config  # K = 4 kept
    before = VLAModel.from_pretrained(first).state_dict()
    after = VLAModel.from_pretrained(tuned).state_dict()
    assert any(not torch.equal(before[k], after[k]) for k in before)  # and trained
    with pytest.raises(ValueError, match="keeps its own config"):
        train(so101_like, tmp_path / "x", "tiny", cfg, progress=False, init=first, model_overrides={"chunk_size": 8})
    # another robot's demonstrations: named at load, before any step
    with pytest.raises(ValueError, match=r"cameras \['scene', 'wrist'\].*the demonstrations have cameras \['top'"):
        train(so101_like, tmp_path / "y", "tiny", cfg, progress=False, init=SHIPPED_POLICY)


def test_vla_train_cli_refuses_detours_without_rollouts_and_a_model_beside_init(capsys):
    assert main(["train", "--dataset", "d", "--out", "o", "--sim-detours", "0.5"]) == 2
    assert "--sim-detours applies to episodes rolled out with --sim-tasks" in capsys.readouterr().err
    assert main(["train", "--sim-tasks", "touch", "--out", "o", "--init", "p", "--model", "smolvlm-256m"]) == 2
    assert "drop --model smolvlm-256m" in capsys.readouterr().err
    # a takeover round names its share and a real policy folder, before any episode is rolled out
    assert main(["train", "--sim-tasks", "touch", "--out", "o", "--detour-policy", str(SHIPPED_POLICY)]) == 2
    assert "give --sim-detours" in capsys.readouterr().err
    assert main(["train", "--sim-tasks", "touch", "--out", "o", "--sim-detours", "0.5", "--detour-policy", "o"]) == 2
    assert "--detour-policy o: not a policy folder" in capsys.readouterr().err
