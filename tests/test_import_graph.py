"""The house's floors, enforced from the source (issue 31): every import between vla's packages points down
(or sideways within a floor), and no two packages import each other through any path. Deferred imports
inside functions count too: they are dependencies all the same, only later."""

import ast
from collections import defaultdict

from tests.helpers import REPO

# Lower floors never import higher ones. A package's floor is one above the highest it imports.
FLOORS = {
    "vla.types": 0,
    "vla.robot": 1,
    "vla.control": 2, "vla.serving": 2, "vla.data": 2, "vla.model": 2,
    "vla.policy": 3, "vla.train": 3,
    "vla.sparsity": 4, "vla.peers": 4, "vla.planner": 4,
    "vla.evaluate": 5,
    "vla.loading": 6,
    "vla.bench": 7,
    "vla.cli": 8,
    "vla.__main__": 9,
}


def package_of(module: str) -> str:
    return ".".join(module.split(".")[:2])


def import_graph() -> dict[str, set[str]]:
    """vla package -> the vla packages its modules import (at the top or inside functions)."""
    root = REPO / "vla"
    edges: dict[str, set[str]] = defaultdict(set)
    for path in root.rglob("*.py"):
        module = ".".join(path.relative_to(REPO).with_suffix("").parts)
        src = package_of(module.removesuffix(".__init__"))
        for node in ast.walk(ast.parse(path.read_text())):
            names = [a.name for a in node.names] if isinstance(node, ast.Import) else \
                [node.module] if isinstance(node, ast.ImportFrom) and node.module and not node.level else []
            for name in names:
                if name.startswith("vla.") and package_of(name) != src:
                    edges[src].add(package_of(name))
    return edges


def test_every_package_has_a_floor():
    packages = {package_of(".".join(p.relative_to(REPO).with_suffix("").parts).removesuffix(".__init__"))
                for p in (REPO / "vla").rglob("*.py")} - {"vla"}
    assert packages - set(FLOORS) == set(), "give each new package its floor here (and in docs/ARCHITECTURE.md)"


def test_imports_point_down():
    upward = sorted((src, dst) for src, dsts in import_graph().items() for dst in dsts
                    if src in FLOORS and FLOORS[dst] > FLOORS[src])
    assert upward == [], "a lower floor imports a higher one"


def test_no_package_imports_itself_through_another():
    edges = import_graph()

    def reaches(start: str) -> set[str]:
        seen, todo = set(), [start]
        while todo:
            for nxt in edges.get(todo.pop(), ()):
                if nxt not in seen:
                    seen.add(nxt)
                    todo.append(nxt)
        return seen

    loops = sorted(p for p in edges if p in reaches(p))
    assert loops == [], f"packages on an import loop: {loops}"
