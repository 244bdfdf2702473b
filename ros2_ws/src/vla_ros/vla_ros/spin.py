"""The one `main` every node shares: init, spin, clean shutdown on Ctrl-C or external shutdown."""

from __future__ import annotations

import rclpy
from rclpy.executors import ExternalShutdownException


def spin(make_node, args=None, before_shutdown=None) -> None:
    rclpy.init(args=args)
    node = None
    try:
        node = make_node()
        rclpy.spin(node)
    except (KeyboardInterrupt, ExternalShutdownException):
        pass
    finally:
        if node is not None:
            if before_shutdown is not None:
                before_shutdown(node)
            node.destroy_node()
        if rclpy.ok():
            rclpy.shutdown()
