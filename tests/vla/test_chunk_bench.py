"""`vla bench chunk`: one training run per chunk length, scored open loop on held-out
demonstrations and closed loop in the sim."""

import numpy as np
import pytest

from vla.bench.chunk import bench_chunk, open_loop_error
from vla.cli import main
from vla.data import open_dataset
from vla.data.record import record


@pytest.fixture(scope="module")
def datasets(tmp_path_factory):
    root = tmp_path_factory.mktemp("chunk")
    record(["push"], 1, root / "train", storage="images", image_size=32, progress=False)
    record(["push"], 1, root / "heldout", storage="images", image_size=32, seed=9000, progress=False)
    return root / "train", root / "heldout"


def test_each_chunk_length_is_trained_and_scored_open_and_closed_loop(datasets, tmp_path):
    train_ds, heldout = datasets
    report = bench_chunk(train_ds, heldout, [2, 4], steps=1, episodes=1, tasks=["push"], out=tmp_path / "k",
                         batch_size=4, progress=False)
    assert list(report["chunks"]) == ["2", "4"]
    frames = open_dataset(heldout).num_frames
    for k, entry in report["chunks"].items():
        assert entry["execute_steps"] == int(k) // 2
        loop = entry["open_loop"]
        assert loop["frames"] == frames
        assert all(np.isfinite(loop[key]) and loop[key] >= 0 for key in ("arm_mrad_first", "arm_mrad_executed"))
        assert entry["episodes"] == 1 and 0 <= entry["success_rate"] <= 1 and entry["policy_ms_per_control_step"] > 0
        assert (tmp_path / "k" / f"k{k}" / "model.safetensors").is_file()
    with pytest.raises(FileExistsError, match="k2"):  # never mixed with an old run
        bench_chunk(train_ds, heldout, [2], steps=1, episodes=1, tasks=["push"], out=tmp_path / "k", progress=False)
    from vla.policy import VLAPolicy

    model = VLAPolicy.from_pretrained(tmp_path / "k" / "k2").model
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
