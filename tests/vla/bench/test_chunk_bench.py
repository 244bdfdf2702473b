"""`vla bench chunk`: one training run per chunk length, scored open loop on held-out
demonstrations and closed loop in the sim."""

import json

import numpy as np
import pytest

from vla.bench.chunk import bench_chunk
from vla.cli import main
from vla.data import open_dataset
from vla.train.validate import open_loop_error


@pytest.fixture(scope="module")
def datasets(record_once):
    """(train, held out): one push demonstration each, the held-out one from the seeds from 9000 on."""
    return (record_once(["push"], 1, storage="images", image_size=32),
            record_once(["push"], 1, storage="images", image_size=32, seed=9000))


@pytest.fixture(scope="module")
def swept(datasets, tmp_path_factory):
    out = tmp_path_factory.mktemp("sweep") / "k"
    train_ds, heldout = datasets
    return bench_chunk(train_ds, heldout, [2, 4], steps=1, episodes=1, tasks=["push"], out=out, batch_size=4,
                       progress=False), out


@pytest.fixture(scope="module")
def k2_policy(datasets, tmp_path_factory):
    """The bench's K=2 policy, trained as bench_chunk trains it (one step), without its sim episodes."""
    from vla.bench.peers import vla_train_config
    from vla.train.trainer import train

    out = tmp_path_factory.mktemp("k2") / "k2"
    train(datasets[0], out, "tiny", vla_train_config(1, 4, 0), progress=False,
          model_overrides={"chunk_size": 2, "n_action_steps": 1})
    return out


@pytest.mark.slow  # the bench: a policy trained per chunk length, each run in the sim
def test_each_chunk_size_is_trained_and_scored_open_and_closed_loop(datasets, swept):
    train_ds, heldout = datasets
    report, out = swept
    assert list(report["chunks"]) == ["2", "4"]
    frames = open_dataset(heldout).num_frames
    for k, entry in report["chunks"].items():
        assert entry["n_action_steps"] == int(k) // 2
        loop = entry["open_loop"]
        assert loop["frames"] == frames
        # A one-step model is far from the demonstrations (an error of 0 would mean comparing a chunk with
        # itself); with one action executed per inference the two errors are the same number.
        assert np.isfinite(loop["arm_mrad_first"]) and loop["arm_mrad_first"] > 0
        assert np.isfinite(loop["arm_mrad_executed"])
        if entry["n_action_steps"] == 1:
            assert loop["arm_mrad_executed"] == loop["arm_mrad_first"]
        assert entry["episodes"] == entry["tasks"]["push"]["episodes"] == 1
        assert entry["mean_success"] == entry["successes"] / entry["episodes"]
        assert entry["policy_ms_per_control_step"] > 0
        assert (out / f"k{k}" / "model.safetensors").is_file()
    with pytest.raises(FileExistsError, match="k2"):  # never mixed with an old run
        bench_chunk(train_ds, heldout, [2], steps=1, episodes=1, tasks=["push"], out=out, progress=False)
    from vla.policy import VLAPolicy

    model = VLAPolicy.from_pretrained(out / "k2").model
    model.config.cameras = ["scene"]
    with pytest.raises(ValueError, match=r"cameras \['scene', 'wrist'\] differ from the policy's \['scene'\]"):
        open_loop_error(model, heldout)


def test_cli_needs_both_datasets_and_valid_lengths(datasets, tmp_path, capsys):
    train_ds, heldout = datasets
    assert main(["bench", "chunk", "--dataset", str(train_ds)]) != 0
    assert "--heldout DIR" in capsys.readouterr().err
    assert main(["bench", "chunk", "--dataset", str(train_ds), "--heldout", str(heldout), "--chunks", "1,4",
                 "--out", str(tmp_path)]) != 0
    assert "each must be >= 2" in capsys.readouterr().err


def test_vla_eval_heldout_reports_open_loop_error_without_the_sim(datasets, k2_policy, tmp_path, capsys):
    train_ds, heldout = datasets
    report = tmp_path / "open_loop.json"
    assert main(["eval", "--policy", str(k2_policy), "--heldout", str(heldout), "--decoding", "autoregressive",
                 "--report", str(report)]) == 0
    data = json.loads(report.read_text())
    assert data["decoding"] == "autoregressive" and data["chunk_size"] == 2 and data["n_action_steps"] == 1
    assert data["frames"] == open_dataset(heldout).num_frames
    assert data["arm_mrad_executed"] == data["arm_mrad_first"] > 0  # one action executed per inference
    assert data["hold_still"]["arm_mrad_executed"] > 0  # the expert's demonstrations move the arm
    # --n-action-steps: the error over the span a run with that flag would execute
    assert main(["eval", "--policy", str(k2_policy), "--heldout", str(heldout), "--decoding", "autoregressive",
                 "--n-action-steps", "2", "--report", str(report)]) == 0
    both = json.loads(report.read_text())
    assert both["n_action_steps"] == 2 and both["arm_mrad_first"] == data["arm_mrad_first"]
    assert both["hold_still"]["arm_mrad_executed"] != data["hold_still"]["arm_mrad_executed"]  # two frames, not one
    assert main(["eval", "--policy", str(k2_policy), "--heldout", str(heldout), "--n-action-steps", "3"]) != 0
    assert "n_action_steps=3; expected 1..2" in capsys.readouterr().err
    assert main(["eval", "--policy", str(train_ds), "--heldout", str(heldout)]) != 0  # a dataset is no policy
    assert "vla eval: error" in capsys.readouterr().err


@pytest.mark.slow  # trains two arms and runs them in the sim
def test_recipe_arms_change_one_thing_each_and_report_as_they_finish(datasets, tmp_path, capsys):
    from vla.bench.recipe import bench_recipe

    train_ds, heldout = datasets
    report_path = tmp_path / "recipe.json"
    report = bench_recipe(train_ds, heldout, ["oracle", "continuous"], steps=1, episodes=1, tasks=["push"],
                          out=tmp_path / "arms", batch_size=4, report_path=report_path, progress=False)
    assert list(report["arms"]) == ["oracle", "continuous"]
    assert json.loads(report_path.read_text())["arms"].keys() == report["arms"].keys()
    oracle = json.loads((tmp_path / "arms" / "oracle" / "config.json").read_text())["vla"]
    assert oracle["state_keys"] == ["observation.state", "observation.environment_state"]
    assert oracle["state_dim"] == 8 + 14 and oracle["action_head"] == "bins"
    continuous = json.loads((tmp_path / "arms" / "continuous" / "config.json").read_text())["vla"]
    assert (continuous["action_head"], continuous["action_tokens"], continuous["state_keys"]) == \
        ("continuous", "per_step", ["observation.state"])
    for entry in report["arms"].values():
        assert entry["episodes"] == 1 and entry["samples_per_s"] > 0
        assert np.isfinite(entry["open_loop"]["arm_mrad_first"])
    # the arms train parallel decoding only: open-loop scoring refuses the mode they never learned
    assert main(["eval", "--policy", str(tmp_path / "arms" / "oracle"), "--heldout", str(heldout),
                 "--decoding", "autoregressive"]) != 0
    assert "trained for parallel decoding only" in capsys.readouterr().err
    with pytest.raises(ValueError, match="unknown arm"):
        bench_recipe(train_ds, heldout, ["bigger"], steps=1, episodes=1, tasks=["push"], out=tmp_path / "x")
