"""Fine-tuning the VLA on LeRobot datasets (`vla train`)."""
