"""The one `main` every node shares: init, spin, clean shutdown on Ctrl-C, SIGTERM or external shutdown.

A node that refuses its start-up parameters (StartupError, or a robot config that does not
load) logs one line that says why and the process exits with status 2, without a traceback.

SIGINT and SIGTERM only set a flag; the main thread sees it within `POLL_S`, lets the callback in
progress finish (a recorder's episode write), then runs the node's own clean-up, destroys the node
and shuts rclpy down, in that order and in one thread. rclpy's own handlers are not installed: they
shut the context down and destroy every node from their own thread while the main thread still
spins, a race that left a recorder running 60 s after SIGTERM on a fresh-clone CI run.
"""

from __future__ import annotations

import signal
import sys

import rclpy
from rclpy.executors import ExternalShutdownException, SingleThreadedExecutor
from rclpy.signals import SignalHandlerOptions

from vla.robot import ConfigError
from vla_ros.parameters import StartupError

EXIT_BAD_PARAMETERS = 2
POLL_S = 0.1  # how long a signal can wait for the main thread


def spin(make_node, args=None, before_shutdown=None) -> None:
    stop = []
    previous = {sig: signal.signal(sig, lambda signum, _frame: stop.append(signum))
                for sig in (signal.SIGINT, signal.SIGTERM)}
    rclpy.init(args=args, signal_handler_options=SignalHandlerOptions.NO)
    node = None
    code = 0
    executor = SingleThreadedExecutor()
    try:
        node = make_node()
        executor.add_node(node)
        while not stop and rclpy.ok():
            executor.spin_once(timeout_sec=POLL_S)
    except (StartupError, ConfigError) as exc:
        rclpy.logging.get_logger(getattr(make_node, "__name__", "vla_ros")).fatal(f"not starting: {exc}")
        code = EXIT_BAD_PARAMETERS
    except (KeyboardInterrupt, ExternalShutdownException):
        pass
    except Exception:  # noqa: BLE001 - rclpy.shutdown() from elsewhere invalidates the context mid-call
        if rclpy.ok():  # not a shutdown: a real failure
            raise
    finally:
        executor.shutdown()
        if node is not None:
            if before_shutdown is not None:
                before_shutdown(node)
            node.destroy_node()
        if rclpy.ok():
            rclpy.shutdown()
        for sig, handler in previous.items():
            signal.signal(sig, handler)
    if code:
        sys.exit(code)
