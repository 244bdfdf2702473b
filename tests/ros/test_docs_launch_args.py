"""The docs name only launch arguments that exist (issue 30): every `name:=value` that docs/ROBOT.md and the
README give is an argument the launch files declare (what `ros2 launch ... --show-args` lists), and every
example command line `ros2 launch vla_ros FILE ...` uses only FILE's own arguments. Remappings (`-r a:=b`)
and node parameters given with `-p` are not launch arguments and are left out."""

import re

import pytest

from tests.helpers import REPO
from tests.ros.launch_graph import PACKAGE_SRC, LaunchGraph

DOCS = [REPO / "docs" / "ROBOT.md", REPO / "README.md"]
LAUNCH = {p.name: p for p in (PACKAGE_SRC / "launch").glob("*.launch.xml")}
ASSIGNMENT = re.compile(r"(?<![-\w])(?<!-r )(?<!-p )([a-z_][a-z0-9_]*):=")


def declared(name: str) -> set[str]:
    return set(LaunchGraph(LAUNCH[name], {}, REPO, {}).declared)


def commands(text: str) -> list[tuple[str, str]]:
    """(launch file, the whole command with its continuation lines) for each `ros2 launch vla_ros FILE`."""
    found = []
    lines = text.splitlines()
    for i, line in enumerate(lines):
        m = re.search(r"ros2 launch (?:vla_ros |launch/)(\w+\.launch\.xml)", line)
        if m:
            command = line
            while command.rstrip().endswith("\\") and i + 1 < len(lines):
                i += 1
                command += " " + lines[i]
            found.append((m.group(1), command))
    return found


def test_every_documented_argument_is_declared():
    every = set().union(*(declared(name) for name in LAUNCH))
    named = {m.group(1) for doc in DOCS for m in ASSIGNMENT.finditer(doc.read_text())}
    assert named, "the docs give launch arguments"
    assert {"speed", "exit_when_done", "max_steps", "seeds", "wait_for_policy"} <= every
    assert sorted(named - every) == [], "named in the docs but declared by no launch file"


@pytest.mark.parametrize("doc", DOCS, ids=lambda p: p.name)
def test_each_example_command_uses_its_own_launch_files_arguments(doc):
    for name, command in commands(doc.read_text()):
        assert name in LAUNCH, f"{doc.name}: {command!r} names a launch file the package does not have"
        used = {m.group(1) for m in ASSIGNMENT.finditer(command)}
        assert sorted(used - declared(name)) == [], f"{doc.name}: {command.strip()!r}"
