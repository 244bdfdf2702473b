"""`vla bench oracle-mlp` learns from a real recorded dataset and acts through the real harness:
trained on two touch episodes, it replays them closed loop from their seeds (it can fail: an
inverted relative target, a misaligned chunk or instruction lost on the way shows as a miss)."""

import pytest

from vla.bench.oracle import bench_oracle
from vla.data.dataset import DatasetError


@pytest.mark.slow  # long training (1500 steps), then sim episodes
def test_it_replays_the_episodes_it_learned(record_once):
    root = record_once(["touch"], 2, seed=0, storage="images", image_size=32)  # eval seeds 0, 1
    report = bench_oracle(str(root), ["touch"], train_steps=1500, batch_size=64, episodes=2, seed=0,
                          chunk_size=10, n_action_steps=5, progress=False)
    assert report["frames"] > 20 and report["final_loss"] < 0.1
    assert report["successes"] == {"touch": 2}, report


def test_a_dataset_without_object_positions_is_refused(tmp_path):
    import numpy as np
    from lerobot.datasets.lerobot_dataset import LeRobotDataset

    image = {"dtype": "image", "shape": (8, 8, 3), "names": ["height", "width", "channels"]}
    joints = {"dtype": "float32", "shape": (2,), "names": ["a", "b"]}
    features = {"observation.images.top": image, "observation.state": joints, "action": joints}
    ds = LeRobotDataset.create("someone/real_arm", fps=10, features=features, root=tmp_path / "real",
                               use_videos=False)
    for _ in range(3):
        ds.add_frame({"observation.images.top": np.zeros((8, 8, 3), np.uint8), "task": "wave",
                      "observation.state": np.zeros(2, np.float32), "action": np.zeros(2, np.float32)})
    ds.save_episode()
    ds.finalize()
    with pytest.raises(DatasetError, match="observation.environment_state"):
        bench_oracle(str(tmp_path / "real"), ["touch"], 10, 8, 1, 0, 4, 2, progress=False)


def test_an_auxiliary_target_is_learned_beside_the_chunk_and_never_read_by_the_policy():
    import numpy as np
    import torch

    from vla.bench.oracle import OracleData, train_oracle

    rng = np.random.default_rng(0)
    data = OracleData.__new__(OracleData)  # 40 frames of vectors, no dataset behind them
    data.state = rng.normal(size=(40, 3)).astype(np.float32)
    data.env = rng.normal(size=(40, 4)).astype(np.float32)
    data.words = np.zeros((40, 2), np.float32)
    data.relative = rng.normal(size=(40, 5, 3)).astype(np.float32)
    data.frames, data.action_dim, data.episodes = 40, 3, 2
    aux = data.env[:, :2] * 3.0  # learnable from the inputs
    plain, _ = train_oracle(data, 5, 300, 16, seed=0)
    model, _ = train_oracle(data, 5, 300, 16, seed=0, aux=aux)
    x = torch.tensor(data.inputs())
    with torch.no_grad():
        assert model(x).shape == plain(x).shape == (40, 15)  # the policy reads the chunk only
        out = model.outputs(x)[:, 15:]
    standardized = (aux - aux.mean(0)) / (aux.std(0) + 1e-3)
    assert np.abs(out.numpy() - standardized).mean() < 0.3  # learned (chance is about 0.8)


def test_a_takeover_round_adds_the_episodes_its_own_policy_led_to_and_trains_again():
    from vla.train.rollouts import SimDemos
    from vla.train.stream import EVALUATION_SEEDS, STREAM_SEED, SimStream

    demos = SimDemos(["touch"], 2, workers=1, progress=False, images=False)
    report = bench_oracle(demos, ["touch"], train_steps=60, batch_size=32, episodes=1, seed=0, chunk_size=10,
                          n_action_steps=5, progress=False, takeover_rounds=1, takeover_episodes=2, workers=1)
    (round1,) = report["rounds"]
    assert round1["episodes_added"] == 2 and round1["episodes_in_dataset"] == report["episodes_in_dataset"] + 2
    assert round1["frames"] > report["frames"] and "successes" in round1 and round1["train_s"] > 0
    # their seeds are the takeover rounds' own: past every evaluation seed and the streamed demonstrations' start
    assert round1["seeds_from"] == 2_000_000 > STREAM_SEED > EVALUATION_SEEDS.stop
    with pytest.raises(ValueError, match="without --stream"):
        bench_oracle(SimStream.__new__(SimStream), ["touch"], 10, 8, 1, 0, 4, 2, takeover_rounds=1)
