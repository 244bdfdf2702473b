"""The package map of `vla/`, drawn from the code: which package imports which, floor by floor.

    python scripts/architecture.py            # writes docs/img/architecture.svg

Each box is a package (or top-level module) of `vla/`, placed on its floor (FLOORS: lower floors never
import higher ones); each arrow is an import found in the source, deferred imports inside functions
included. `tests/test_import_graph.py` checks the same graph, so the picture and the rules cannot drift
from the code: a new package or an upward import fails the test until this file and the picture follow.
"""

from __future__ import annotations

import ast
import sys
from collections import defaultdict
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]

# Lower floors never import higher ones; a package sits one floor above the highest it imports.
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


def packages() -> set[str]:
    return {package_of(".".join(p.relative_to(REPO).with_suffix("").parts).removesuffix(".__init__"))
            for p in (REPO / "vla").rglob("*.py")} - {"vla"}


def import_graph() -> dict[str, set[str]]:
    """vla package -> the vla packages its modules import (at the top or inside functions)."""
    edges: dict[str, set[str]] = defaultdict(set)
    for path in (REPO / "vla").rglob("*.py"):
        src = package_of(".".join(path.relative_to(REPO).with_suffix("").parts).removesuffix(".__init__"))
        for node in ast.walk(ast.parse(path.read_text())):
            if isinstance(node, ast.Import):
                names = [a.name for a in node.names]
            elif isinstance(node, ast.ImportFrom) and node.module and not node.level:
                names = [node.module]
            else:
                continue
            edges[src].update(package_of(n) for n in names if n.startswith("vla.") and package_of(n) != src)
    return edges


def svg(edges: dict[str, set[str]]) -> str:
    """Floors bottom-up, one row each; arrows from importer to imported."""
    rows: dict[int, list[str]] = defaultdict(list)
    for name in sorted(FLOORS):
        rows[FLOORS[name]].append(name)
    box_w, box_h, gap_x, gap_y, margin = 132, 30, 24, 46, 20
    width = margin * 2 + max(len(r) for r in rows.values()) * (box_w + gap_x)
    height = margin * 2 + len(rows) * (box_h + gap_y)
    place = {}
    for floor, names in rows.items():
        y = height - margin - (floor + 1) * (box_h + gap_y) + gap_y
        x0 = (width - len(names) * (box_w + gap_x) + gap_x) / 2
        for i, name in enumerate(names):
            place[name] = (x0 + i * (box_w + gap_x), y)
    out = [f'<svg xmlns="http://www.w3.org/2000/svg" width="{width}" height="{height}" font-family="sans-serif" '
           'font-size="12">',
           '<defs><marker id="a" viewBox="0 0 10 10" refX="10" refY="5" markerWidth="6" markerHeight="6" '
           'orient="auto-start-reverse"><path d="M 0 0 L 10 5 L 0 10 z" fill="#888"/></marker></defs>',
           f'<rect width="{width}" height="{height}" fill="white"/>']
    for src in sorted(edges):
        for dst in sorted(edges[src]):
            if src in place and dst in place:
                (x1, y1), (x2, y2) = place[src], place[dst]
                out.append(f'<line x1="{x1 + box_w / 2:.0f}" y1="{y1 + box_h:.0f}" x2="{x2 + box_w / 2:.0f}" '
                           f'y2="{y2:.0f}" stroke="#bbb" stroke-width="1" marker-end="url(#a)"/>')
    for floor, names in rows.items():
        y = place[names[0]][1]
        out.append(f'<text x="4" y="{y + box_h / 2 + 4:.0f}" fill="#999">{floor}</text>')
        for name in names:
            x, y = place[name]
            out.append(f'<rect x="{x:.0f}" y="{y:.0f}" width="{box_w}" height="{box_h}" rx="5" fill="#eef3fb" '
                       'stroke="#4a6fa5"/>')
            out.append(f'<text x="{x + box_w / 2:.0f}" y="{y + box_h / 2 + 4:.0f}" text-anchor="middle">{name}</text>')
    out.append("</svg>")
    return "\n".join(out) + "\n"


def main() -> int:
    missing = packages() - set(FLOORS)
    if missing:
        print(f"architecture: give {sorted(missing)} a floor in FLOORS", file=sys.stderr)
        return 1
    target = REPO / "docs" / "img" / "architecture.svg"
    target.parent.mkdir(parents=True, exist_ok=True)
    target.write_text(svg(import_graph()))
    print(f"wrote {target.relative_to(REPO)}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
