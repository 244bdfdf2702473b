"""ROS 2 nodes of the VLA stack: thin wrappers around vla.control, vla.serving and sim (never torch)."""
