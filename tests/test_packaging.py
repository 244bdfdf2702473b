"""A regular (non-editable) install works: the wheel holds every package, the configs and the sim assets,
and they load from the installed copy with no checkout in sight."""

import os
import shutil
import subprocess
import sys
import textwrap
import zipfile
from pathlib import Path

import pytest

from tests.helpers import REPO

PACKED = ("pyproject.toml", "README.md", "vla", "sim", "configs")  # what pyproject.toml builds from


def _pip(*args: str, cwd: Path) -> None:
    result = subprocess.run([sys.executable, "-m", "pip", *args, "--no-deps", "--no-index", "--quiet",
                             "--disable-pip-version-check"], cwd=cwd, capture_output=True, text=True, timeout=300)
    assert result.returncode == 0, result.stdout[-2000:] + result.stderr[-3000:]


@pytest.fixture(scope="module")
def wheel(tmp_path_factory) -> Path:
    """The wheel built from a copy of the sources (a build in the checkout would race other test runs)."""
    tmp = tmp_path_factory.mktemp("packaging")
    src = tmp / "src"
    src.mkdir()
    for name in PACKED:
        path = REPO / name
        if path.is_dir():
            shutil.copytree(path, src / name, ignore=shutil.ignore_patterns("__pycache__", "*.pyc"))
        else:
            shutil.copy2(path, src / name)
    _pip("wheel", "--no-build-isolation", "--wheel-dir", str(tmp / "dist"), str(src), cwd=tmp)
    (built,) = (tmp / "dist").glob("vla_stack-*.whl")
    return built


@pytest.mark.slow  # builds the wheel
def test_wheel_holds_every_package_the_configs_and_the_assets(wheel):
    names = set(zipfile.ZipFile(wheel).namelist())
    for root in ("vla", "sim"):
        for module in (REPO / root).rglob("*.py"):
            if "__pycache__" not in module.parts:
                rel = module.relative_to(REPO).as_posix()
                assert rel in names, f"{rel} is not in the wheel: add its package to pyproject.toml's packages"
    configs = [p for p in (REPO / "configs").rglob("*") if p.is_file()]
    assert configs
    for path in configs:
        rel = "vla/_configs/" + path.relative_to(REPO / "configs").as_posix()
        assert rel in names, f"{rel} is not in the wheel: add its folder to pyproject.toml's packages"
    for asset in (REPO / "sim" / "tabletop" / "assets").glob("*.xml"):
        assert f"sim/tabletop/assets/{asset.name}" in names


@pytest.mark.slow  # pip-installs the wheel
def test_installed_wheel_loads_its_own_configs_and_assets(wheel, tmp_path):
    site = tmp_path / "site"
    _pip("install", "--target", str(site), str(wheel), cwd=tmp_path)
    code = textwrap.dedent("""
        import sys
        from pathlib import Path

        import sim.tabletop.scene
        import vla
        from vla.model.config import MODEL_DIR, load_model_config
        from vla.robot import CONFIG_DIR, load_robot_config
        from vla.sparsity.policy import DEFAULT_CONFIG

        site = Path(sys.argv[1]).resolve()
        for path in (Path(vla.__file__), Path(sim.tabletop.scene.__file__), CONFIG_DIR, MODEL_DIR, DEFAULT_CONFIG,
                     sim.tabletop.scene.SCENE_XML):
            assert path.resolve().is_relative_to(site), f"{path} is not from the installed copy in {site}"
        robot = load_robot_config("panda")
        assert load_model_config("tiny").chunk_size > 0 and DEFAULT_CONFIG.is_file()
        scene = sim.tabletop.scene.TabletopScene(robot)
        assert len(scene.joint_positions()) == robot.action_dim
        print("ok", CONFIG_DIR)
    """)
    env = {**os.environ, "PYTHONPATH": str(site), "MUJOCO_GL": os.environ.get("MUJOCO_GL", "egl")}
    result = subprocess.run([sys.executable, "-c", code, str(site)], cwd=tmp_path, env=env, capture_output=True,
                            text=True, timeout=120)
    assert result.returncode == 0, result.stdout[-2000:] + result.stderr[-3000:]
    assert result.stdout.startswith("ok") and "_configs" in result.stdout
