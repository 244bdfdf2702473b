"""LeRobot's policies beside ours: ACT and Diffusion Policy trained and run through LeRobot's own
classes and processors, behind the Policy contract."""

from vla.peers.lerobot_policy import LeRobotPolicy, is_lerobot_checkpoint

__all__ = ["LeRobotPolicy", "is_lerobot_checkpoint"]
