from glob import glob

from setuptools import find_packages, setup

package_name = "vla_ros"

setup(
    name=package_name,
    version="0.1.0",
    packages=find_packages(exclude=["test"]),
    # Everything installed comes from inside this package, so a copy of it alone builds complete. The nodes'
    # parameter defaults and the robot configs are the vla package's (configs/ros, configs/robots): the nodes
    # read them from the installed vla package, so there is no second copy here (docs/ROBOT.md).
    data_files=[
        ("share/ament_index/resource_index/packages", ["resource/" + package_name]),
        ("share/" + package_name, ["package.xml"]),
        ("share/" + package_name + "/launch", glob("launch/*.launch.xml")),
    ],
    install_requires=["setuptools"],
    zip_safe=True,
    maintainer="VLA stack maintainers",
    maintainer_email="maintainers@example.com",
    description="ROS 2 nodes of the VLA stack",
    license="Apache-2.0",
    entry_points={
        "console_scripts": [
            "policy_node = vla_ros.policy_node:main",
            "sim_node = vla_ros.sim_node:main",
            "recorder_node = vla_ros.recorder_node:main",
            "policy_server = vla_ros.serve:main",
        ],
    },
)
