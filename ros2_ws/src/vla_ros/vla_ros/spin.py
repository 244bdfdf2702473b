"""The one `main` every node shares: init, spin, clean shutdown on Ctrl-C or external shutdown.

A node that refuses its start-up parameters (StartupError, or a robot config that does not
load) logs one line that says why and the process exits with status 2, without a traceback.
"""

from __future__ import annotations

import sys

import rclpy
from rclpy.executors import ExternalShutdownException

from vla.robot import ConfigError
from vla_ros.parameters import StartupError

EXIT_BAD_PARAMETERS = 2


def spin(make_node, args=None, before_shutdown=None) -> None:
    rclpy.init(args=args)
    node = None
    code = 0
    try:
        node = make_node()
        rclpy.spin(node)
    except (StartupError, ConfigError) as exc:
        rclpy.logging.get_logger(getattr(make_node, "__name__", "vla_ros")).fatal(f"not starting: {exc}")
        code = EXIT_BAD_PARAMETERS
    except (KeyboardInterrupt, ExternalShutdownException):
        pass
    except Exception:  # noqa: BLE001 - a signal during start-up invalidates the context mid-construction
        if rclpy.ok():  # not a shutdown: a real failure
            raise
    finally:
        if node is not None:
            if before_shutdown is not None:
                before_shutdown(node)
            node.destroy_node()
        if rclpy.ok():
            rclpy.shutdown()
    if code:
        sys.exit(code)
