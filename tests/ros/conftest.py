import os
import threading

import pytest

rclpy = pytest.importorskip("rclpy")

DOMAIN = 40 + os.getpid() % 150  # one DDS domain per test run: parallel runs do not cross-talk


@pytest.fixture(scope="module")
def ros(tmp_path_factory):
    """rclpy in this process, on loopback, with an observer node spinning in a thread."""
    tmp = tmp_path_factory.mktemp("ros")
    os.environ.update(ROS_DOMAIN_ID=str(DOMAIN), ROS_AUTOMATIC_DISCOVERY_RANGE="LOCALHOST",
                      ROS_HOME=str(tmp / "ros_home"), RMW_IMPLEMENTATION="rmw_fastrtps_cpp")
    context = rclpy.Context()
    rclpy.init(context=context, domain_id=DOMAIN)
    node = rclpy.create_node("test_observer", context=context)
    executor = rclpy.executors.SingleThreadedExecutor(context=context)
    executor.add_node(node)
    thread = threading.Thread(target=executor.spin, daemon=True)
    thread.start()
    yield node, tmp, DOMAIN
    executor.shutdown()
    node.destroy_node()
    rclpy.shutdown(context=context)
