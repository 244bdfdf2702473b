"""LeRobot's ACT and Diffusion Policy beside ours: trained through LeRobot's own classes on a
dataset LeRobot wrote, run behind the Policy contract, scored by the same harness."""

import json

import numpy as np
import pytest
from lerobot.datasets.lerobot_dataset import LeRobotDataset

from vla.cli import main
from vla.data.record import record
from vla.model.config import load_model_config
from vla.peers import LeRobotPolicy, is_lerobot_checkpoint
from vla.peers.train import peer_config, train_peer


@pytest.fixture(scope="module")
def sim_dataset(tmp_path_factory):
    root = tmp_path_factory.mktemp("peers") / "push"
    record(["push"], 1, root, storage="images", image_size=32, progress=False)
    return root


@pytest.mark.parametrize("kind", ["act", "diffusion"])
def test_peer_trains_saves_loads_and_runs_in_the_sim(kind, sim_dataset, tmp_path):
    out = tmp_path / kind
    summary = train_peer(kind, sim_dataset, out, steps=2, batch_size=4, progress=False)
    assert summary["parameters"] > 0 and np.isfinite(summary["final_loss"])
    assert is_lerobot_checkpoint(out) and not is_lerobot_checkpoint(sim_dataset)
    policy = LeRobotPolicy.from_pretrained(out, device="cpu")
    assert policy.metadata["type"] == kind and policy.metadata["cameras"] == ["scene", "wrist"]
    report = tmp_path / "eval.json"
    assert main(["eval", "--policy", str(out), "--tasks", "push", "--episodes", "1", "--image-size", "32",
                 "--quiet", "--report", str(report)]) == 0
    assert json.loads(report.read_text())["overall"]["episodes"] == 1
    obs = {"observation.images.scene": np.zeros((32, 32, 3), np.uint8), "observation.state": np.zeros(8, np.float32),
           "task": "push"}
    with pytest.raises(ValueError, match=r"cameras \['scene'\]; this policy was trained with"):
        policy.predict_chunk(obs)


def test_peer_configs_download_nothing():
    for kind in ("act", "diffusion"):
        assert peer_config(kind).pretrained_backbone_weights is None
    with pytest.raises(ValueError, match="unknown peer policy 'vqbet'"):
        peer_config("vqbet")


def test_act_chunks_like_our_default_vla():
    ours = load_model_config("tiny")
    act = peer_config("act")
    assert (act.chunk_size, act.n_action_steps) == (ours.chunk_size, ours.n_action_steps)
    short = peer_config("act", chunk_size=4)
    assert (short.chunk_size, short.n_action_steps) == (4, 4)


def test_bench_reports_a_policy_that_cannot_train_and_runs_the_others(tmp_path):
    """A dataset with no camera: every image-based policy reports why, none crashes the bench."""
    from vla.bench.peers import bench_peers

    features = {"observation.state": {"dtype": "float32", "shape": (8,), "names": [f"j{i}" for i in range(8)]},
                "action": {"dtype": "float32", "shape": (8,), "names": [f"j{i}" for i in range(8)]}}
    ds = LeRobotDataset.create("x/nocam", fps=10, features=features, root=tmp_path / "nocam", use_videos=False)
    for _ in range(4):
        ds.add_frame({"observation.state": np.zeros(8, np.float32), "action": np.zeros(8, np.float32), "task": "t"})
    ds.save_episode()
    ds.finalize()
    report = bench_peers(tmp_path / "nocam", steps=1, episodes=1, tasks=["push"], out=tmp_path / "out",
                         batch_size=2, progress=False)
    for name in ("vla", "act", "diffusion"):
        assert "error" in report["policies"][name], name
    assert "camera" in report["policies"]["vla"]["error"]
