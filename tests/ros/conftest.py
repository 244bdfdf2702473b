import os
import threading

import pytest
import rclpy  # `make test` installs it: a broken install must fail the suite, not skip it

DOMAIN = 40 + os.getpid() % 150  # one DDS domain per test run: parallel runs do not cross-talk


@pytest.fixture(scope="module")
def ros(tmp_path_factory):
    """rclpy in this process, on loopback, with an observer node spinning in a thread."""
    tmp = tmp_path_factory.mktemp("ros")
    ros_env = dict(ROS_DOMAIN_ID=str(DOMAIN), ROS_AUTOMATIC_DISCOVERY_RANGE="LOCALHOST",
                   ROS_HOME=str(tmp / "ros_home"), RMW_IMPLEMENTATION="rmw_fastrtps_cpp")
    saved = {k: os.environ.get(k) for k in ros_env}
    os.environ.update(ros_env)  # node subprocesses inherit it; restored when the module is done
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
    for k, v in saved.items():
        if v is None:
            os.environ.pop(k, None)
        else:
            os.environ[k] = v
