"""Datasets that several test modules read, built once per session (tests only read them)."""

import numpy as np
import pytest


@pytest.fixture(scope="session")
def so101_like(tmp_path_factory):
    """A dataset written by LeRobot itself for another robot: other cameras (one not square) and image
    sizes, six joints with other names, three values of privileged state, its own robot type. Three
    episodes of 8 frames, each with its own task."""
    from lerobot.datasets.lerobot_dataset import LeRobotDataset

    root = tmp_path_factory.mktemp("ds") / "so101"
    image = ["height", "width", "channels"]
    features = {
        "observation.images.top": {"dtype": "image", "shape": (24, 32, 3), "names": image},
        "observation.images.wrist": {"dtype": "image", "shape": (16, 16, 3), "names": image},
        "observation.state": {"dtype": "float32", "shape": (6,), "names": [f"m{i}.pos" for i in range(6)]},
        "action": {"dtype": "float32", "shape": (6,), "names": [f"m{i}.pos" for i in range(6)]},
        "observation.environment_state": {"dtype": "float32", "shape": (3,), "names": ["x", "y", "z"]},
    }
    ds = LeRobotDataset.create("someone/so101", fps=30, features=features, root=root, robot_type="so101_follower",
                               use_videos=False)
    rng = np.random.default_rng(0)
    for ep in range(3):
        q = rng.normal(size=6).astype(np.float32)
        for _ in range(8):
            q = q + rng.normal(scale=0.05, size=6).astype(np.float32)
            ds.add_frame({"observation.images.top": rng.integers(0, 255, (24, 32, 3), dtype=np.uint8),
                          "observation.images.wrist": rng.integers(0, 255, (16, 16, 3), dtype=np.uint8),
                          "observation.state": q, "action": q + 0.01, "task": f"move the brick {ep}",
                          "observation.environment_state": rng.normal(size=3).astype(np.float32)})
        ds.save_episode()
    ds.finalize()
    return root


@pytest.fixture(scope="session")
def record_once(tmp_path_factory):
    """`record(tasks, episodes, **settings)` of the expert in the sim, once per set of arguments in the
    session (modules that need the same recording share it); returns the dataset's root."""
    from vla.data.record import record

    roots = {}

    def recorded(tasks: list[str], episodes: int, **settings):
        key = (tuple(tasks), episodes, tuple(sorted(settings.items())))
        if key not in roots:
            root = tmp_path_factory.mktemp("sim_dataset") / "_".join(tasks)
            summary = record(list(tasks), episodes, root, progress=False, **settings)
            assert summary["episodes"] == len(tasks) * episodes and not summary["interrupted"], summary
            roots[key] = root
        return roots[key]

    return recorded
