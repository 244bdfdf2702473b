"""The control loop between a policy and an arm: chunk execution, safety filter, watchdog. numpy only.

The same loop serves the ROS 2 policy node and simulated rollouts without ROS.
"""

from vla.control.executor import ChunkExecutor
from vla.control.loop import ControlLoop, LoopStatus
from vla.control.safety import SafetyFilter, SafetyReport
from vla.control.watchdog import Watchdog

__all__ = ["ChunkExecutor", "ControlLoop", "LoopStatus", "SafetyFilter", "SafetyReport", "Watchdog"]
