"""Demonstration data in LeRobot's dataset format (v3.0), read and written with LeRobot's own library.

`open_dataset` loads any local LeRobot v3.0 dataset (or a hub repo id when the machine has
network) and serves training samples: every camera, the state, action chunks of length K and
the task text, with the dataset's own normalization statistics. The feature set comes from
the dataset's metadata, never from constants. Recording from the simulator lives in
`vla.data.record` (it needs `sim`).
"""

from vla.data.dataset import DatasetError, DemoDataset, open_dataset

__all__ = ["DatasetError", "DemoDataset", "open_dataset"]
