"""The house's floors, enforced from the source (issue 31): every import between vla's packages points down
(or sideways within a floor), and no two packages import each other through any path. Deferred imports
inside functions count too: they are dependencies all the same, only later. The floors and the graph are
`scripts/architecture.py`'s, which also draws docs/img/architecture.svg from them."""

from scripts.architecture import FLOORS, REPO, import_graph, packages, svg


def test_every_package_has_a_floor():
    assert packages() - set(FLOORS) == set(), "give each new package its floor in scripts/architecture.py"


def test_the_committed_picture_is_the_code_s():
    picture = REPO / "docs" / "img" / "architecture.svg"
    assert picture.read_text() == svg(import_graph()), "run `python scripts/architecture.py` and commit the SVG"


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
