"""Language-conditioned tabletop tasks: instructions, randomized layouts, success predicates.

A task samples an `Episode`: an instruction (one of several phrasings), the object layout and
its subtasks. Single-step tasks have one subtask whose instruction is the task's; multi-step
tasks have 2-4 subtasks phrased exactly as the single-step tasks are, so that a planner's
subtasks are instructions the policy was trained on. All randomness comes from the env's
`np_random`.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field

import numpy as np

from sim.tabletop.describer import REGIONS, in_bowl, in_region, on_cube, region_centre
from sim.tabletop.scene import COLORS, CUBE_HALF, ObjectPose, TabletopScene

# Where objects may be placed (robot base at the origin, +x away from the robot, +y to its left).
CUBE_X, CUBE_Y = (0.33, 0.67), (-0.17, 0.17)
BOWL_X, BOWL_Y = (0.40, 0.60), (-0.14, 0.14)
MIN_CUBE_GAP = 0.09  # centre to centre: leaves room for open fingers between cubes
MIN_BOWL_GAP = 0.15  # cube centre to bowl centre: outside the rim, with room for fingers
# A cube looks the same every 90 degrees, so a yaw near +-45 degrees is ambiguous: the expert's grasp
# yaw would jump by 90 degrees between two scenes that look alike. Yaws start 10 degrees clear of it.
CUBE_YAW = np.radians(35)


@dataclass(frozen=True)
class Subtask:
    """One step a policy can be told to do, with the predicate that says it is done."""

    kind: str  # touch | pick | place_in_bowl | push | stack
    instruction: str
    target: str  # colour of the cube acted on
    dest: str | None = None  # a colour (stack), a region (push), or None

    def named_positions(self, scene: TabletopScene) -> np.ndarray:
        """Where the objects this instruction names are (m, world frame): the cube acted on, then its
        goal: the cube below (stack), the bowl (place_in_bowl), the region's centre on the table
        (push), or the cube itself again (touch, pick: the gripper's goal is the cube)."""
        target = scene.cube_pos(self.target)
        if self.kind == "stack":
            goal = scene.cube_pos(self.dest)
        elif self.kind == "place_in_bowl":
            goal = scene.bowl_pos()
        elif self.kind == "push":
            goal = np.r_[region_centre(self.dest), CUBE_HALF]
        else:
            goal = target
        return np.concatenate([target, goal]).astype(np.float32)

    def done(self, scene: TabletopScene) -> bool:
        held = scene.is_held(self.target)
        if self.kind == "touch":
            return scene.robot_touches(self.target)
        if self.kind == "pick":
            return held and scene.cube_pos(self.target)[2] > 0.08
        if self.kind == "place_in_bowl":
            return in_bowl(scene, self.target) and not held
        if self.kind == "push":
            pos = scene.cube_pos(self.target)
            return in_region(pos, self.dest) and pos[2] < CUBE_HALF + 0.01 and not held
        if self.kind == "stack":
            return on_cube(scene, self.target, self.dest) and not held
        raise ValueError(f"unknown subtask kind {self.kind!r}")


@dataclass(frozen=True)
class Episode:
    task_id: str
    instruction: str
    subtasks: tuple[Subtask, ...]
    cubes: dict[str, ObjectPose]
    bowl_xy: tuple[float, float]

    def progress(self, scene: TabletopScene) -> list[bool]:
        return [s.done(scene) for s in self.subtasks]


SINGLE_TEMPLATES = {
    "touch": ("touch the {a} cube", "tap the {a} cube with the gripper", "reach out and touch the {a} cube"),
    "pick": ("pick up the {a} cube", "lift the {a} cube", "grab the {a} cube and lift it"),
    "place_in_bowl": (
        "put the {a} cube in the bowl", "place the {a} cube into the bowl", "drop the {a} cube in the bowl",
    ),
    "push": (
        "push the {a} cube to the {b} region", "slide the {a} cube into the {b} region",
        "shove the {a} cube over to the {b}",
    ),
    "stack": (
        "stack the {a} cube on the {b} cube", "put the {a} cube on top of the {b} cube",
        "place the {a} cube onto the {b} cube",
    ),
}


def parse_subtask(text: str) -> Subtask:
    """The subtask a canonical instruction names ("put the red cube in the bowl"); ValueError otherwise."""
    import re

    words = " ".join(text.split())
    colors, regions = "|".join(COLORS), "|".join(REGIONS)
    for kind, templates in SINGLE_TEMPLATES.items():
        b = regions if kind == "push" else colors
        pattern = re.escape(templates[0]).replace(r"\{a\}", f"(?P<a>{colors})").replace(r"\{b\}", f"(?P<b>{b})")
        m = re.fullmatch(pattern, words)
        if m:
            dest = m.groupdict().get("b")
            if dest == m["a"]:
                raise ValueError(f"{text!r}: a cube cannot be stacked on itself; name two different cubes")
            return Subtask(kind, words, m["a"], dest)
    canon = "; ".join(t[0] for t in SINGLE_TEMPLATES.values())
    raise ValueError(f"{text!r} is not a subtask instruction; expected one of: {canon} "
                     f"(a, b: {', '.join(COLORS)}; regions: {', '.join(REGIONS)})")


def free_spot(scene: TabletopScene, color: str, rng: np.random.Generator) -> ObjectPose:
    """A table pose for `color` clear of the other cubes, the bowl and the gripper (for perturbations)."""
    bowl, tcp = scene.bowl_pos(), scene.tcp_pos()
    others = [scene.cube_pos(c) for c in COLORS if c != color]
    for _ in range(1000):
        x, y = rng.uniform(*CUBE_X), rng.uniform(*CUBE_Y)
        if (np.hypot(x - bowl[0], y - bowl[1]) >= MIN_BOWL_GAP and np.hypot(x - tcp[0], y - tcp[1]) >= 0.12
                and all(np.hypot(x - p[0], y - p[1]) >= MIN_CUBE_GAP for p in others)):
            return ObjectPose(float(x), float(y), float(rng.uniform(-CUBE_YAW, CUBE_YAW)))
    raise RuntimeError(f"no free spot on the table for the {color} cube")


def subtask(kind: str, a: str, b: str | None = None) -> Subtask:
    """A subtask in the canonical (first) phrasing of its single-step task."""
    return Subtask(kind, SINGLE_TEMPLATES[kind][0].format(a=a, b=b), a, b)


@dataclass(frozen=True)
class TaskSpec:
    id: str
    group: str  # single | multi
    env_name: str  # gymnasium id is f"vla_sim/{env_name}-v0"
    max_steps: int
    templates: tuple[str, ...]
    # (rng, cubes, bowl_xy, slots) -> (slots for the instruction, subtasks)
    plan: Callable[..., tuple[dict, list[Subtask]]]
    layout_ok: Callable[[dict[str, ObjectPose], tuple[float, float], dict], bool] = field(
        default=lambda cubes, bowl, slots: True
    )

    @property
    def env_id(self) -> str:
        return f"vla_sim/{self.env_name}-v0"

    def sample(self, rng: np.random.Generator) -> Episode:
        """A random episode: colours, layout and phrasing all drawn from `rng`."""
        for _ in range(1000):
            slots = _draw_slots(rng, self.id)
            cubes, bowl = _sample_layout(rng, slots)
            if cubes is not None and self.layout_ok(cubes, bowl, slots):
                break
        else:  # pragma: no cover - the layout constraints are satisfiable by construction
            raise RuntimeError(f"task {self.id!r}: no valid layout after 1000 draws")
        slots, subtasks = self.plan(rng, cubes, bowl, slots)
        template = self.templates[rng.integers(len(self.templates))]
        return Episode(self.id, template.format(**slots), tuple(subtasks), cubes, bowl)


def _draw_slots(rng: np.random.Generator, task_id: str) -> dict:
    colors = list(rng.permutation(COLORS))
    return {"a": colors[0], "b": colors[1], "c": colors[2], "side": ("left", "right")[rng.integers(2)],
            "task": task_id}


def _sample_layout(rng: np.random.Generator, slots: dict):
    if slots["task"] == "push":  # the bowl waits on the far side of the push
        away = -1.0 if slots["side"] == "left" else 1.0
        bowl = (float(rng.uniform(*BOWL_X)), float(away * rng.uniform(0.16, 0.2)))
    else:
        bowl = (float(rng.uniform(*BOWL_X)), float(rng.uniform(*BOWL_Y)))
    cubes: dict[str, ObjectPose] = {}
    for color in COLORS:
        if slots["task"] == "push" and color == slots["a"]:
            # The pushed cube starts near the middle, in line with the marked regions.
            x, y = rng.uniform(0.45, 0.55), rng.uniform(-0.04, 0.04)
        else:
            x, y = rng.uniform(*CUBE_X), rng.uniform(*CUBE_Y)
        if np.hypot(x - bowl[0], y - bowl[1]) < MIN_BOWL_GAP:
            return None, bowl
        if any(np.hypot(x - p.x, y - p.y) < MIN_CUBE_GAP for p in cubes.values()):
            return None, bowl
        cubes[color] = ObjectPose(float(x), float(y), float(rng.uniform(-CUBE_YAW, CUBE_YAW)))
    return cubes, bowl


def _push_path_clear(cubes: dict[str, ObjectPose], bowl: tuple[float, float], slots: dict) -> bool:
    """Nothing between the pushed cube and its region, nor where the gripper starts the push."""
    t = cubes[slots["a"]]
    sign = 1.0 if slots["side"] == "left" else -1.0
    for color, p in cubes.items():
        if color != slots["a"] and abs(p.x - t.x) < 0.09 and (p.y - t.y) * sign > -0.12:
            return False
    return not (abs(bowl[0] - t.x) < 0.15 and (bowl[1] - t.y) * sign > -0.16)


def _single(kind: str):
    def plan(rng, cubes, bowl, slots):
        dest = slots["side"] if kind == "push" else slots["b"]
        slots = {**slots, "b": dest}
        return slots, [Subtask(kind, SINGLE_TEMPLATES[kind][0].format(**slots), slots["a"],
                               dest if kind in ("push", "stack") else None)]
    return plan


def _plan_all_in_bowl(rng, cubes, bowl, slots):
    # Nearest cube first: a fixed, sensible order keeps demonstrations consistent.
    order = sorted(COLORS, key=lambda c: np.hypot(cubes[c].x - bowl[0], cubes[c].y - bowl[1]))
    return slots, [subtask("place_in_bowl", c) for c in order]


def _plan_pair_in_bowl(rng, cubes, bowl, slots):
    return slots, [subtask("place_in_bowl", slots["a"]), subtask("place_in_bowl", slots["b"])]


def _plan_tower(rng, cubes, bowl, slots):
    return slots, [subtask("stack", slots["b"], slots["a"]), subtask("stack", slots["c"], slots["b"])]


def _single_task(kind: str, env_name: str, max_steps: int, **kw) -> TaskSpec:
    # The episode instruction uses the sampled phrasing; the subtask keeps the canonical one.
    return TaskSpec(kind, "single", env_name, max_steps, SINGLE_TEMPLATES[kind], _single(kind), **kw)


TASKS: dict[str, TaskSpec] = {
    t.id: t
    for t in (
        _single_task("touch", "Touch", 60),
        _single_task("pick", "Pick", 80),
        _single_task("place_in_bowl", "PlaceInBowl", 120),
        _single_task("push", "Push", 120, layout_ok=_push_path_clear),
        _single_task("stack", "Stack", 120),
        TaskSpec("pair_in_bowl", "multi", "PairInBowl", 240,
                 ("put the {a} cube and the {b} cube in the bowl", "place the {a} and {b} cubes into the bowl",
                  "drop the {a} cube and then the {b} cube in the bowl"), _plan_pair_in_bowl),
        TaskSpec("tower", "multi", "Tower", 240,
                 ("build a tower with {a} at the bottom, then {b}, then {c}",
                  "stack the {b} cube on the {a} cube and then the {c} cube on the {b} cube",
                  "make a tower: the {a} cube at the bottom, {b} in the middle and {c} on top"), _plan_tower),
        TaskSpec("all_in_bowl", "multi", "AllInBowl", 360,
                 ("put all the cubes in the bowl", "place every cube into the bowl",
                  "clear the table by putting all the cubes in the bowl"), _plan_all_in_bowl),
    )
}


def get_task(task_id: str) -> TaskSpec:
    if task_id not in TASKS:
        raise ValueError(f"unknown task id {task_id!r}; valid ids: {', '.join(TASKS)}")
    return TASKS[task_id]
