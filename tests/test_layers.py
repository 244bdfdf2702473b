"""The import rules of docs/ARCHITECTURE.md, enforced: the robot side (control, serving, sim, ROS nodes)
never imports torch.

Each layer is imported in a fresh interpreter (this one has torch loaded by other tests), and the
check names the first module that brought a forbidden one in.
"""

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

from tests.helpers import REPO

ROS_PACKAGE = REPO / "ros2_ws" / "src" / "vla_ros"
HEAVY = ("torch", "transformers", "lerobot")


def _modules(package: str, folder: Path) -> list[str]:
    """The package and every module under it, subpackages included."""
    names = []
    for path in sorted(folder.rglob("*.py")):
        parts = path.relative_to(folder).with_suffix("").parts
        names.append(".".join((package, *parts[:-1])) if parts[-1] == "__init__" else ".".join((package, *parts)))
    return list(dict.fromkeys([package, *names]))


def _first_importers(modules: list[str], forbidden: tuple[str, ...], path: list[Path] = ()) -> dict[str, list[str]]:
    """Import `modules` in order in a fresh interpreter: {module: forbidden modules that first appeared with it}."""
    code = (
        "import importlib, json, sys\n"
        "modules, forbidden = json.loads(sys.argv[1]), json.loads(sys.argv[2])\n"
        "found = {}\n"
        "for name in modules:\n"
        "    seen = {f for f in forbidden if f in sys.modules}\n"
        "    importlib.import_module(name)\n"
        "    new = sorted(f for f in forbidden if f in sys.modules and f not in seen)\n"
        "    if new:\n"
        "        found[name] = new\n"
        "print(json.dumps(found))\n"
    )
    env = {**os.environ, "MUJOCO_GL": os.environ.get("MUJOCO_GL", "egl"),
           "PYTHONPATH": os.pathsep.join([*map(str, path), str(REPO), os.environ.get("PYTHONPATH", "")])}
    result = subprocess.run([sys.executable, "-c", code, json.dumps(modules), json.dumps(list(forbidden))],
                            cwd=REPO, env=env, capture_output=True, text=True, timeout=120)
    assert result.returncode == 0, result.stderr[-3000:]
    return json.loads(result.stdout.strip().splitlines()[-1])


@pytest.mark.parametrize("package", ["vla.control", "vla.serving"])
def test_control_and_serving_are_numpy_only(package):
    robot = _modules("vla.robot", REPO / "vla" / "robot")  # the robot configs these layers read
    modules = ["vla.types", *robot, *_modules(package, REPO / package.replace(".", "/"))]
    assert _first_importers(modules, HEAVY) == {}


def test_sim_imports_neither_torch_nor_the_model():
    modules = _modules("sim", REPO / "sim")
    assert {"sim.tabletop.env", "sim.metaworld.env"} <= set(modules)  # both suites are checked
    assert _first_importers(modules, (*HEAVY, "vla.model")) == {}


def test_ros_nodes_import_no_torch():
    modules = _modules("vla_ros", ROS_PACKAGE / "vla_ros")
    assert len(modules) > 4, modules  # the nodes are there to be checked
    assert _first_importers(modules, HEAVY, [ROS_PACKAGE]) == {}


def test_the_check_names_the_module_that_imported():
    # msgpack stands in for torch here: the same mechanism, a fraction of the import time
    assert _first_importers(["vla.types", "vla.serving.codec", "vla.serving.client"], ("msgpack", "torch")) == {
        "vla.serving.codec": ["msgpack"]}
