"""VLA robot control stack: vision-language-action policies from camera to arm.

Importing `vla` is cheap on purpose: torch and the model load only where they are used,
so the robot side (control, serving, ROS nodes) stays light.
"""

__version__ = "0.1.0"
