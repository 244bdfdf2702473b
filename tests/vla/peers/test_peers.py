"""LeRobot's ACT and Diffusion Policy beside ours: trained through LeRobot's own classes on a
dataset LeRobot wrote, run behind the Policy contract, scored by the same harness."""

import csv
import json

import numpy as np
import pytest
import torch
from lerobot.datasets.lerobot_dataset import LeRobotDataset
from torch.optim.optimizer import register_optimizer_step_pre_hook

import vla.peers.train as peers_train
from vla.cli import main
from vla.model.config import load_model_config
from vla.peers import LeRobotPolicy, is_lerobot_checkpoint
from vla.peers.train import peer_config, train_peer


@pytest.fixture(scope="module")
def sim_dataset(record_once):
    return record_once(["push"], 1, storage="images", image_size=32)  # the one tests/vla/bench trains on


@pytest.mark.slow  # peer training, then a sim episode
@pytest.mark.parametrize("kind", ["act", "diffusion"])
def test_peer_trains_saves_loads_and_runs_in_the_sim(kind, sim_dataset, tmp_path):
    out = tmp_path / kind
    summary = train_peer(kind, sim_dataset, out, steps=2, batch_size=4, progress=False)
    assert summary["parameters"] > 0 and np.isfinite(summary["final_loss"])
    assert is_lerobot_checkpoint(out) and not is_lerobot_checkpoint(sim_dataset)
    policy = LeRobotPolicy.from_pretrained(out, device="cpu")
    assert policy.metadata["type"] == kind and policy.metadata["cameras"] == ["scene", "wrist"]
    # the same inputs as our VLA: the recorded privileged object positions stay out of the peer
    assert "observation.environment_state" not in policy.policy.config.input_features
    report = tmp_path / "eval.json"
    assert main(["eval", "--policy", str(out), "--tasks", "push", "--episodes", "1", "--image-size", "32",
                 "--quiet", "--report", str(report)]) == 0
    assert json.loads(report.read_text())["overall"]["episodes"] == 1
    obs = {"observation.images.scene": np.zeros((32, 32, 3), np.uint8), "observation.state": np.zeros(8, np.float32),
           "task": "push"}
    with pytest.raises(ValueError, match=r"cameras \['scene'\]; this policy was trained with"):
        policy.predict_chunk(obs)


@pytest.mark.slow  # 68 peer training steps
def test_a_time_budget_counts_its_steps_and_ends_the_schedule_there(sim_dataset, tmp_path, monkeypatch):
    """`vla bench peers --time-budget`: the shared loop's probe counts the steps that fit the budget,
    and Diffusion Policy's cosine schedule (LeRobot's preset) is rebuilt over that total."""
    import vla.train.loop as loop

    reads = iter([0.0, 1.0, 3.0, 3.5])  # started, the probe's start (step 10) and end (step 50), the end
    monkeypatch.setattr(loop, "clock", lambda: next(reads))  # simulated time: load-independent
    real_config = peers_train.peer_config

    def short_warmup(*args, **kwargs):  # 60 warm-up steps instead of 500, still past the 50 probed ones
        cfg = real_config(*args, **kwargs)
        cfg.scheduler_warmup_steps = 60
        return cfg

    monkeypatch.setattr(peers_train, "peer_config", short_warmup)
    lrs = []
    hook = register_optimizer_step_pre_hook(lambda opt, args, kwargs: lrs.append(opt.param_groups[0]["lr"]))
    try:
        summary = train_peer("diffusion", sim_dataset, tmp_path / "d", steps=10_000, batch_size=2, progress=False,
                             time_budget_s=4.0)
    finally:
        hook.remove()
    # 40 steps took 2 s; 4 - 3 - 0.08 (2% kept for the saves) = 0.92 s left at 1/20 s a step: 50 + 18 steps.
    assert summary["steps"] == 68 and summary["train_config"]["time_budget_s"] == 4.0 and len(lrs) == 68
    assert summary["optimizer"]["type"] == "adam" and summary["scheduler"]["name"] == "cosine"
    # LeRobot's own optimizer and schedule built for 68 steps from the start give the same learning rates.
    cfg = short_warmup("diffusion")
    optimizer = cfg.get_optimizer_preset().build([torch.nn.Parameter(torch.zeros(1))])
    scheduler = cfg.get_scheduler_preset().build(optimizer, 68)
    expected = []
    for _ in range(68):
        expected.append(optimizer.param_groups[0]["lr"])
        optimizer.step()
        scheduler.step()
    np.testing.assert_allclose(lrs, expected, rtol=1e-9)
    assert expected[60] == max(expected) and expected[-1] < 0.05 * max(expected)  # warm-up, then down to ~0
    with pytest.raises(ValueError, match="time_budget_s=0; expected a positive number of seconds"):
        train_peer("act", sim_dataset, tmp_path / "a", steps=1, time_budget_s=0, progress=False)


@pytest.mark.slow  # 3 peer training steps
def test_a_peer_run_resumes_from_its_checkpoint(sim_dataset, tmp_path):
    """The shared loop's checkpoints: a peer run continues from OUT/checkpoints with its optimizer
    state (LeRobot's Adam), and a fresh run over it is refused."""
    out = tmp_path / "act"
    train_peer("act", sim_dataset, out, steps=2, batch_size=4, progress=False)
    with pytest.raises(FileExistsError, match="pass --resume"):
        train_peer("act", sim_dataset, out, steps=2, batch_size=4, progress=False)
    summary = train_peer("act", sim_dataset, out, steps=3, batch_size=4, progress=False, resume=True)
    assert summary["resumed_from_step"] == 2 and summary["steps"] == 3
    assert sorted(p.name for p in (out / "checkpoints").iterdir()) == ["step_0000002", "step_0000003"]
    state = torch.load(out / "checkpoints" / "step_0000003" / "training_state.pt", weights_only=True)
    assert state["optimizer"]["param_groups"][0]["lr"] == peer_config("act").optimizer_lr
    assert [int(r["step"]) for r in csv.DictReader((out / "metrics.csv").open())] == [2, 3]
    assert is_lerobot_checkpoint(out) and LeRobotPolicy.from_pretrained(out, device="cpu").metadata["type"] == "act"


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


@pytest.mark.slow  # peer training (two policies) and sim episodes
def test_bench_reports_a_policy_that_fails_and_runs_the_others(sim_dataset, tmp_path, monkeypatch):
    """One policy fails to train: it is reported with its reason, and the others are still trained,
    saved and scored in the sim."""
    import vla.bench.peers as peers

    train = peers._train

    def act_fails(name, *args, **kw):
        if name == "act":
            raise RuntimeError("out of memory (simulated)")
        return train(name, *args, **kw)

    monkeypatch.setattr(peers, "_train", act_fails)
    report = peers.bench_peers(sim_dataset, steps=1, episodes=1, tasks=["push"], out=tmp_path / "out",
                               batch_size=2, image_size=32, progress=False)["policies"]
    assert report["act"] == {"error": "RuntimeError: out of memory (simulated)"}
    for name in ("vla", "diffusion"):
        entry = report[name]
        assert "error" not in entry, entry
        assert entry["parameters"] > 0 and entry["episodes"] == entry["tasks"]["push"]["episodes"] == 1
        assert entry["mean_success"] == entry["successes"] and entry["policy_ms_per_control_step"] > 0
        assert any((tmp_path / "out" / name).iterdir())
    assert not (tmp_path / "out" / "act").exists()


def test_bench_reports_why_each_policy_cannot_train_on_a_dataset_without_a_camera(tmp_path):
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


@pytest.fixture(scope="module")
def two_episodes(tmp_path_factory):
    """Episodes of 6 and 4 frames (frames 0-5 and 6-9), every action the frame's global index."""
    root = tmp_path_factory.mktemp("pad") / "two"
    names = [f"j{i}" for i in range(8)]
    features = {"observation.state": {"dtype": "float32", "shape": (8,), "names": names},
                "action": {"dtype": "float32", "shape": (8,), "names": names},
                "observation.images.scene": {"dtype": "image", "shape": (16, 16, 3),
                                             "names": ["height", "width", "channels"]}}
    ds = LeRobotDataset.create("x/two", fps=10, features=features, root=root, use_videos=False)
    frame = 0
    for length in (6, 4):
        for _ in range(length):
            ds.add_frame({"observation.state": np.full(8, frame, np.float32), "action": np.full(8, frame, np.float32),
                          "observation.images.scene": np.full((16, 16, 3), frame, np.uint8), "task": "t"})
            frame += 1
        ds.save_episode()
    ds.finalize()
    return root


def test_pad_mask_is_true_exactly_past_an_episodes_end(two_episodes):
    from vla.data import open_dataset
    from vla.train.data import DemoCache

    cache = DemoCache.from_dataset(open_dataset(two_episodes), chunk_size=4, image_size=16, progress=False)
    index = torch.tensor([2, 4, 5, 6, 8, 9])
    mask = cache.pad_mask(index)
    assert mask.tolist() == [[False, False, False, False],  # 2-5: inside the first episode
                             [False, False, True, True],  # 4, 5 then two copies of 5
                             [False, True, True, True],  # the last frame: all but itself padded
                             [False, False, False, False],  # 6-9: the whole second episode
                             [False, False, True, True],
                             [False, True, True, True]]
    chunks = cache.chunk(index)[..., 0]  # (B, K) frame numbers, as the actions are
    last = torch.tensor([5, 5, 5, 9, 9, 9])[:, None].expand(-1, 4)
    assert torch.equal(chunks[mask], last[mask].float())  # padded steps repeat the episode's last action
    # The same mask as LeRobot's own loader (delta timestamps) gives ACT when it reads the dataset itself
    lerobot = open_dataset(two_episodes, chunk_size=4)
    assert torch.equal(mask, torch.stack([lerobot[int(i)]["action_is_pad"] for i in index]))


def test_act_trains_with_the_true_padding_mask(two_episodes, tmp_path, monkeypatch):
    """Each chunk ACT is given repeats an action exactly where the batch flags padding (every action differs)."""
    from lerobot.policies.act.modeling_act import ACTPolicy

    seen = []
    forward = ACTPolicy.forward

    def spy(self, batch):
        seen.append((batch["action"][..., 0].clone(), batch["action_is_pad"].clone()))
        return forward(self, batch)

    monkeypatch.setattr(ACTPolicy, "forward", spy)
    train_peer("act", two_episodes, tmp_path / "act", steps=2, batch_size=8, progress=False)
    actions, pad = map(torch.cat, zip(*seen, strict=True))
    repeats = torch.cat([torch.zeros(len(actions), 1, dtype=torch.bool), actions[:, 1:] == actions[:, :-1]], dim=1)
    assert pad.any() and torch.equal(pad, repeats)
