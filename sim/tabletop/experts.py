"""Scripted experts: privileged-state controllers that solve every task, for demonstrations.

An expert reads object poses from the simulator (which a learned policy never sees), plans
TCP waypoints for each subtask (approach, descend, grasp, lift, carry, place, release; or a
closed-loop push), and turns them into absolute joint targets with damped-least-squares IK.
Grasps hold by friction alone. A failed grasp is retried. It implements the Policy contract
with chunks of one action, so the evaluator drives it like any other policy.
"""

from __future__ import annotations

from collections.abc import Iterator

import numpy as np

from sim import expert_metadata
from sim.tabletop.describer import in_bowl, region_centre
from sim.tabletop.ik import TcpIK, down_rotation
from sim.tabletop.scene import COLORS, CUBE_HALF, ObjectPose, TabletopScene
from sim.tabletop.tasks import Subtask, free_spot, parse_subtask

RELEASE = 0.03  # finger opening (m) to let go of a placed cube: clear of it, short of its neighbours
PUSH_OPENING = 0.012  # fingers just apart: two contact points on the cube's face
SAFE_Z = 0.16  # carry height for the TCP, above any tower of two cubes
FAST, SLOW = 0.04, 0.015  # TCP speed per control tick, m
PAD_BELOW_TCP = 0.009  # the pads reach this far below the TCP
DETOUR_TICKS = 20  # a recovery demonstration's detour lasts 4 to this many ticks
DETOUR_CLEARANCE = 0.05  # and stops with the TCP this far above the wrong cube's centre (m)
REACH = (0.25, 0.78)  # horizontal distance from the arm's base (m) at which the expert can grasp from above
Action = np.ndarray


def nearest_equivalent_yaw(yaw: float, reference: float = 0.0) -> float:
    """A cube looks the same every 90 degrees: the equivalent yaw closest to `reference`."""
    return reference + (yaw - reference + np.pi / 4) % (np.pi / 2) - np.pi / 4


class ScriptedExpert:
    """Solves the current episode of a `TabletopEnv` (pass the env or its `unwrapped`)."""

    def __init__(self, env):
        self.env = env.unwrapped
        self.robot = self.env.robot
        # Fully open and closed: the gripper's range in the robot config.
        self.open, self.closed = self.robot.gripper.upper, self.robot.gripper.lower
        self.metadata = expert_metadata(self.robot)
        self._ik: TcpIK | None = None
        self._plan: Iterator[Action] | None = None

    @property
    def scene(self) -> TabletopScene:
        return self.env.scene

    def reset(self) -> None:
        if self._ik is None or self._ik.model is not self.scene.model:
            self._ik = TcpIK(self.scene.model, self.robot)
        self._plan = None

    def predict_chunk(self, obs) -> np.ndarray:
        if self._plan is None:
            self.reset()
            self._q = self.scene.joint_positions()[:-1].astype(np.float64)
            self._grip = float(self.scene.joint_positions()[-1])
            self._pos, self._yaw = self.scene.tcp_pos(), self.scene.tcp_yaw()
            self._plan = self._solve_episode()
        action = next(self._plan, None)
        if action is None:  # done: hold still
            action = self._action()
        return action[None, :].astype(np.float32)

    def detour(self, obs, rng: np.random.Generator, max_ticks: int = DETOUR_TICKS) -> tuple[dict, dict]:
        """Drive the arm off course before a demonstration starts, for a recovery demonstration.

        The instruction's cube is moved to a random free spot and the expert heads for it for 4 to
        `max_ticks` ticks, or until the TCP is `DETOUR_CLEARANCE` above that cube's centre (the arm
        descends towards the wrong place, as a policy that misjudged the cube does). Then the cube
        is put back where it was and the expert forgets its plan. Returns the observation and info
        to record from: the expert shows the way back from there."""
        env = self.env
        color = env.episode.subtasks[0].target
        home = ObjectPose(*(float(v) for v in self.scene.cube_pos(color)[:2]), self.scene.cube_yaw(color))
        obs = env.displace(color, free_spot(self.scene, color, rng))
        self.reset()
        for _ in range(int(rng.integers(4, max_ticks + 1))):
            if self.scene.tcp_pos()[2] < self.scene.cube_pos(color)[2] + DETOUR_CLEARANCE:
                break  # low over the wrong place, short of touching anything there
            obs, *_ = env.step(self.predict_chunk(obs)[0])
        obs = env.displace(color, home)
        self.reset()  # the next action is planned from where the arm is now
        return obs, env.current_info()

    def cannot_act(self) -> str | None:
        """Why the expert cannot solve the episode from the scene as it is now (None: it can).

        After a policy or a perturbation moved things: a cube the episode needs that fell off the table,
        or lies where a grasp from above cannot reach (closer to the base than REACH[0] or farther than
        REACH[1])."""
        needed = dict.fromkeys(c for s in self.env.episode.subtasks for c in (s.target, s.dest) if c in COLORS)
        for color in needed:
            p = self.scene.cube_pos(color)
            if p[2] < -CUBE_HALF:
                return f"the {color} cube fell off the table (z = {p[2]:.2f} m)"
            r = float(np.hypot(p[0], p[1]))
            if not REACH[0] <= r <= REACH[1]:
                return (f"the {color} cube is out of reach: {r:.2f} m from the arm's base; the expert grasps "
                        f"from above between {REACH[0]} and {REACH[1]} m")
        return None

    # --- episode and subtasks -----------------------------------------------------------------
    def _solve_episode(self) -> Iterator[Action]:
        for sub in self.env.episode.subtasks:
            for _attempt in range(3):
                if sub.done(self.scene):
                    break
                yield from self._solve(sub)
        yield from self._hold(1000)

    def _solve(self, sub: Subtask) -> Iterator[Action]:
        if sub.kind == "touch":
            yield from self._touch(sub.target)
        elif sub.kind == "pick":
            if (yield from self._hold_or_grasp(sub.target)):
                yield from self._move(self._pos + [0, 0, 0.02], self._yaw, self.closed, SLOW)
                yield from self._hold(5)
        elif sub.kind == "place_in_bowl":
            if (yield from self._hold_or_grasp(sub.target)):
                slot, yaw = self._bowl_slot(sub.target)
                yield from self._place(sub.target, slot, yaw)
        elif sub.kind == "stack":
            if (yield from self._hold_or_grasp(sub.target)):
                bottom = self.scene.cube_pos(sub.dest)
                # Turn the held cube to line up with the one below.
                yaw = nearest_equivalent_yaw(self.scene.cube_yaw(sub.dest), self._yaw)
                yield from self._place(sub.target, bottom + [0, 0, 2 * CUBE_HALF + 0.003], yaw)
        elif sub.kind == "push":
            yield from self._push(sub.target, sub.dest)

    # --- skills ------------------------------------------------------------------------------
    def _touch(self, color: str) -> Iterator[Action]:
        p = self.scene.cube_pos(color)
        yaw = self._grasp_yaw(color)
        yield from self._move([p[0], p[1], p[2] + 0.1], yaw, self.closed, FAST)
        yield from self._move([p[0], p[1], p[2] + CUBE_HALF + PAD_BELOW_TCP - 0.008], yaw, self.closed, SLOW)
        yield from self._hold(3)
        yield from self._move([p[0], p[1], p[2] + 0.1], yaw, self.closed, FAST)

    def _hold_or_grasp(self, color: str):
        """The grasp phase from the measured state: a cube already held (a policy grasped it before the
        expert took over) is lifted to carry height, not let go and grasped again. Returns whether it is held."""
        if not self.scene.is_held(color):
            return (yield from self._grasp(color))
        yield from self._move([self._pos[0], self._pos[1], SAFE_Z], self._yaw, self.closed, SLOW)
        return self.scene.is_held(color)

    def _grasp(self, color: str):
        """Approach from above, close, lift to carry height. Returns whether the cube is held."""
        p = self.scene.cube_pos(color)
        yaw = self._grasp_yaw(color)
        yield from self._move([p[0], p[1], max(self._pos[2], p[2] + 0.1)], yaw, self.open, FAST)
        yield from self._move([p[0], p[1], p[2] + 0.1], yaw, self.open, FAST)
        yield from self._move([p[0], p[1], p[2]], yaw, self.open, SLOW)
        yield from self._gripper(self.closed, ticks=4)
        yield from self._move([p[0], p[1], SAFE_Z], yaw, self.closed, SLOW)
        if self.scene.is_held(color):
            return True
        yield from self._gripper(self.open, ticks=3)
        return False

    def _place(self, color: str, cube_goal: np.ndarray, yaw: float | None = None) -> Iterator[Action]:
        """Carry the held cube so that its centre lands at `cube_goal` with the TCP at `yaw`, release, retreat."""
        yaw = self._yaw if yaw is None else yaw
        above = np.array([cube_goal[0], cube_goal[1], SAFE_Z])
        yield from self._move(above, yaw, self.closed, FAST)
        # The cube may sit off-centre in the fingers: aim the cube, not the TCP.
        offset = self.scene.cube_pos(color) - self.scene.tcp_pos()
        goal = np.asarray(cube_goal) - offset
        yield from self._move([goal[0], goal[1], SAFE_Z], yaw, self.closed, SLOW)
        yield from self._move(goal, yaw, self.closed, SLOW)
        yield from self._gripper(RELEASE, ticks=3)
        yield from self._move([goal[0], goal[1], SAFE_Z], yaw, RELEASE, FAST)

    def _push(self, color: str, region: str) -> Iterator[Action]:
        sign = 1.0 if region == "left" else -1.0
        yaw = np.pi / 2  # finger axis along x: the two pads push the cube's face side by side
        standoff = CUBE_HALF + 0.011 + 0.012
        z = CUBE_HALF - 0.003 + PAD_BELOW_TCP - 0.012
        p = self.scene.cube_pos(color)
        start = [p[0], p[1] - sign * standoff, z]
        yield from self._move([start[0], start[1], 0.1], yaw, PUSH_OPENING, FAST)
        yield from self._move(start, yaw, PUSH_OPENING, SLOW)
        goal_y = region_centre(region)[1]
        for _ in range(60):
            p = self.scene.cube_pos(color)
            if sign * (p[1] - goal_y) > -0.005:
                break
            # Closed loop: advance along y while staying centred on the cube in x.
            y = self._pos[1] + sign * 0.012
            y = min(y, goal_y - standoff) if sign > 0 else max(y, goal_y + standoff)
            yield from self._move([p[0], y, z], yaw, PUSH_OPENING, 0.012, max_ticks=1)
        yield from self._move(self._pos + [0, -sign * 0.02, 0.0], yaw, PUSH_OPENING, SLOW)
        yield from self._move(self._pos + [0, 0, 0.1], yaw, PUSH_OPENING, FAST)

    def _bowl_slot(self, color: str) -> tuple[np.ndarray, float | None]:
        """Where in the bowl to drop, and the yaw to do it with.

        Three slots, 120 degrees apart, hold three cubes side by side. Take the free slot
        farthest from cubes already in the bowl and turn the fingers so that they open
        across, not towards, the nearest of them.
        """
        bowl = self.scene.bowl_pos()
        inside = [self.scene.cube_pos(c)[:2] for c in COLORS if c != color and in_bowl(self.scene, c)]
        slots = [bowl[:2] + 0.045 * np.array([np.cos(a), np.sin(a)]) for a in np.pi / 2 + np.arange(3) * 2 * np.pi / 3]
        if not inside:
            return np.array([*slots[0], 0.008 + CUBE_HALF + 0.012]), None
        slot = max(slots, key=lambda s: min(np.linalg.norm(s - c) for c in inside))
        nearest = min(inside, key=lambda c: np.linalg.norm(slot - c))
        towards = float(np.arctan2(*(nearest - slot)[::-1]))
        # The finger axis is at yaw - pi/2: yaw = towards puts it across the line to the neighbour.
        yaw = self._yaw + (towards - self._yaw + np.pi / 2) % np.pi - np.pi / 2
        return np.array([*slot, 0.008 + CUBE_HALF + 0.012]), yaw

    # --- motion primitives ----------------------------------------------------------------------
    def _grasp_yaw(self, color: str) -> float:
        return nearest_equivalent_yaw(self.scene.cube_yaw(color), 0.0)

    def _action(self) -> Action:
        return np.concatenate([self._q, [self._grip]])

    def _move(self, pos, yaw: float, grip: float, speed: float, max_ticks: int = 60) -> Iterator[Action]:
        """Move the commanded TCP in a straight line at `speed` per tick.

        No settle ticks at the end: repeating the command while the arm catches up taught policies
        to hover near the goal. Without them the expert still solved 200/200 episodes (seeds
        1000-1039 of each single-step task) in 15-20% fewer steps."""
        pos = np.asarray(pos, dtype=np.float64)
        start_yaw = self._yaw
        distance = float(np.linalg.norm(pos - self._pos))
        turn = abs(yaw - start_yaw)
        ticks = max(1, int(np.ceil(max(distance / speed, turn / 0.25))))
        start = self._pos.copy()
        for k in range(1, min(ticks, max_ticks) + 1):
            f = k / ticks
            self._command(start + (pos - start) * f, start_yaw + (yaw - start_yaw) * f, grip)
            yield self._action()

    def _command(self, pos: np.ndarray, yaw: float, grip: float) -> None:
        self._q = self._ik.solve(pos, down_rotation(yaw), self._q)
        self._pos, self._yaw, self._grip = pos, yaw, grip

    def _gripper(self, grip: float, ticks: int) -> Iterator[Action]:
        self._grip = grip
        for _ in range(ticks):
            yield self._action()

    def _hold(self, ticks: int) -> Iterator[Action]:
        for _ in range(ticks):
            yield self._action()


class SkillExpert(ScriptedExpert):
    """The scripted skills driven by language: it executes the subtask its observation's `task`
    names ("put the red cube in the bowl"), whatever the episode is. A planner's subtasks can so
    be executed by skills that do not fail on their own, which isolates the planner's quality.
    An instruction that is not a subtask holds the arm still (`metadata['unparsed']` counts them)."""

    def __init__(self, env):
        super().__init__(env)
        self.metadata["name"] = "scripted-skills"
        self.metadata["unparsed"] = 0
        self._current: str | None = None

    def reset(self) -> None:
        super().reset()
        self._current, self._yaw = None, 0.0
        self.metadata["unparsed"] = 0

    def predict_chunk(self, obs) -> np.ndarray:
        text = " ".join(str(obs["task"]).split())
        if self._plan is None or text != self._current:
            ScriptedExpert.reset(self)  # a new subtask starts from where the arm is, yaw included
            self._current = text
            self._q = self.scene.joint_positions()[:-1].astype(np.float64)
            self._grip = float(self.scene.joint_positions()[-1])
            self._pos = self.scene.tcp_pos()
            try:
                self._plan = self._solve_subtask(parse_subtask(text))
            except ValueError:
                self.metadata["unparsed"] += 1
                self._plan = self._hold(10_000)
        return super().predict_chunk(obs)

    def _solve_subtask(self, sub: Subtask) -> Iterator[Action]:
        # The last subtask may have ended with the fingers next to what they placed: rise first.
        if self._pos[2] < SAFE_Z - 0.01:
            yield from self._move([self._pos[0], self._pos[1], SAFE_Z], self._yaw, self._grip, FAST)
        attempts = 0
        while True:  # closed loop: a subtask undone (the cube moved away) is done again
            if sub.done(self.scene) or attempts >= 5:
                yield self._action()
                continue
            attempts += 1
            yield from self._solve(sub)
