"""Scene describer: the symbolic state of the tabletop as short, canonical English.

"the red cube is in the bowl; the green cube is on the red cube; the blue cube is on the
table in the left region." Deterministic (fixed object order, fixed wording), covering every
relation the tasks test. The planner learns from these texts; they are training targets, never
inputs to a policy at run time.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from sim.tabletop.scene import BOWL_INNER_RADIUS, COLORS, CUBE_HALF, TabletopScene

REGIONS = ("left", "right")
REGION_HALF = (0.12, 0.06)  # half extents (x, y) of the marked regions, m
REGION_Y = 0.26  # |y| of the region centres; left is +y (the robot's left)
REGION_X = 0.5


@dataclass(frozen=True)
class CubeRelation:
    """Where one cube is. `support` is 'gripper', 'bowl', another colour, or 'table'."""

    color: str
    support: str
    region: str | None = None

    def text(self) -> str:
        if self.support == "gripper":
            return f"the {self.color} cube is in the gripper"
        if self.support == "bowl":
            return f"the {self.color} cube is in the bowl"
        if self.support in COLORS:
            return f"the {self.color} cube is on the {self.support} cube"
        if self.region:
            return f"the {self.color} cube is on the table in the {self.region} region"
        return f"the {self.color} cube is on the table"


def region_centre(region: str) -> np.ndarray:
    """(x, y) of a marked region's centre on the table."""
    return np.array([REGION_X, (1.0 if region == "left" else -1.0) * REGION_Y])


def in_region(pos: np.ndarray, region: str) -> bool:
    centre = region_centre(region)
    return abs(pos[0] - centre[0]) <= REGION_HALF[0] and abs(pos[1] - centre[1]) <= REGION_HALF[1]


def in_bowl(scene: TabletopScene, color: str) -> bool:
    pos, bowl = scene.cube_pos(color), scene.bowl_pos()
    return bool(np.linalg.norm(pos[:2] - bowl[:2]) < BOWL_INNER_RADIUS - CUBE_HALF / 2 and pos[2] < 0.12)


def on_cube(scene: TabletopScene, top: str, bottom: str) -> bool:
    """`top` rests on `bottom`: centred within half a cube and one cube height above it."""
    a, b = scene.cube_pos(top), scene.cube_pos(bottom)
    return bool(np.linalg.norm(a[:2] - b[:2]) < CUBE_HALF and abs((a[2] - b[2]) - 2 * CUBE_HALF) < 0.008)


def relation(scene: TabletopScene, color: str) -> CubeRelation:
    if scene.is_held(color):
        return CubeRelation(color, "gripper")
    if in_bowl(scene, color):
        return CubeRelation(color, "bowl")
    for other in COLORS:
        if other != color and on_cube(scene, color, other):
            return CubeRelation(color, other)
    pos = scene.cube_pos(color)
    region = next((r for r in REGIONS if in_region(pos, r)), None)
    return CubeRelation(color, "table", region)


def describe(scene: TabletopScene) -> str:
    """The whole scene as one canonical sentence list."""
    return "; ".join(relation(scene, c).text() for c in COLORS) + "."
