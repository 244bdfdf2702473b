"""The MuJoCo tabletop: model, physics stepping, named state and camera rendering.

Everything is addressed by name (joints from the robot config, objects from the MJCF), never
by index slices. Tasks, the describer and the experts read the scene through this class.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

import mujoco
import numpy as np

from vla.robot import RobotConfig

ASSETS = Path(__file__).resolve().parent / "assets"
SCENE_XML = ASSETS / "tabletop.xml"

COLORS = ("red", "green", "blue")
CUBE_HALF = 0.02  # m; the cubes are 4 cm
BOWL_INNER_RADIUS = 0.082  # m; inside of the bowl's wall
TCP_SITE = "tcp"
PAD_GEOMS = ("left_pad", "right_pad")
# Where `clear_table` puts the objects: on the floor beside the table, outside every camera's view.
OFF_CAMERA_CUBE = (0.05, 0.55)
OFF_CAMERA_BOWL = (0.05, -0.55)


ENVIRONMENT_STATE_NAMES = tuple(
    [f"{c}_cube.{a}" for c in COLORS for a in "xyz"] + ["bowl.x", "bowl.y", "tcp.x", "tcp.y", "tcp.z"]
)


def cube(color: str) -> str:
    return f"{color}_cube"


@dataclass(frozen=True)
class ObjectPose:
    x: float
    y: float
    yaw: float


class TabletopScene:
    """Physics and rendering of the tabletop for one robot config."""

    def __init__(self, robot: RobotConfig, image_size: tuple[int, int] | None = None):
        self.robot = robot
        self.model = mujoco.MjModel.from_xml_path(str(SCENE_XML))
        sizes = [image_size] if image_size else [(c.height, c.width) for c in robot.cameras]
        # The offscreen buffer must hold the largest image asked for.
        self.model.vis.global_.offheight = max(480, *(h for h, _ in sizes))
        self.model.vis.global_.offwidth = max(640, *(w for _, w in sizes))
        self.data = mujoco.MjData(self.model)
        self.substeps = round(1.0 / (robot.control_rate_hz * self.model.opt.timestep))
        self._check_robot_matches_model()
        self._qpos_adr = np.array([self.model.joint(n).qposadr[0] for n in robot.joint_names])
        self._mirror_finger = self.model.joint("finger_joint2").qposadr[0]
        self._robot_bodies = self._subtree_bodies("link0")
        self._pad_ids = {self.model.geom(g).id for g in PAD_GEOMS}
        self._cube_geom = {c: self.model.geom(cube(c)).id for c in COLORS}
        self._renderers: dict[str, mujoco.Renderer] = {}
        self._image_size = image_size
        self._ctrl_prev = robot.home_array.astype(np.float64)

    # --- set-up -----------------------------------------------------------------------------
    def _check_robot_matches_model(self) -> None:
        names = {self.model.joint(i).name for i in range(self.model.njnt)}
        missing = [n for n in self.robot.joint_names if n not in names]
        if missing:
            raise ValueError(f"robot config {self.robot.name!r} names joints {missing} that the scene lacks")
        cams = {self.model.camera(i).name for i in range(self.model.ncam)}
        missing = [c for c in self.robot.camera_names if c not in cams]
        if missing:
            raise ValueError(f"robot config {self.robot.name!r} names cameras {missing}; the scene has {sorted(cams)}")
        if self.model.nu != self.robot.action_dim:
            raise ValueError(f"scene has {self.model.nu} actuators; robot config expects {self.robot.action_dim}")
        for i, joint in enumerate(self.robot.all_joints):
            lo, hi = self.model.actuator_ctrlrange[i]
            if not (np.isclose(lo, joint.lower, atol=1e-4) and np.isclose(hi, joint.upper, atol=1e-4)):
                raise ValueError(
                    f"actuator {i} range [{lo}, {hi}] differs from the config's limits of {joint.name!r} "
                    f"[{joint.lower}, {joint.upper}]"
                )

    def _subtree_bodies(self, root: str) -> set[int]:
        root_id = self.model.body(root).id
        bodies = {root_id}
        for b in range(self.model.nbody):
            parent = b
            while parent not in (0, root_id):
                parent = self.model.body_parentid[parent]
            if parent == root_id:
                bodies.add(b)
        return bodies

    def reset(self, poses: dict[str, ObjectPose], bowl_xy: tuple[float, float]) -> None:
        """Robot at home, objects at the given poses, resting on the table."""
        mujoco.mj_resetData(self.model, self.data)
        home = self.robot.home_array.astype(np.float64)
        self._set_joints(home)
        self.data.ctrl[:] = home
        self._ctrl_prev = home.copy()
        self.model.body("bowl").pos[:2] = bowl_xy
        for color, pose in poses.items():
            adr = self.model.joint(cube(color)).qposadr[0]
            self.data.qpos[adr : adr + 3] = (pose.x, pose.y, CUBE_HALF)
            self.data.qpos[adr + 3 : adr + 7] = (np.cos(pose.yaw / 2), 0.0, 0.0, np.sin(pose.yaw / 2))
        mujoco.mj_forward(self.model, self.data)

    def place_cube(self, color: str, pose: ObjectPose) -> None:
        """Move one cube to rest at `pose` on the table, at rest (a perturbation: someone moved it)."""
        joint = self.model.joint(cube(color))
        adr, vadr = joint.qposadr[0], joint.dofadr[0]
        self.data.qpos[adr : adr + 3] = (pose.x, pose.y, CUBE_HALF)
        self.data.qpos[adr + 3 : adr + 7] = (np.cos(pose.yaw / 2), 0.0, 0.0, np.sin(pose.yaw / 2))
        self.data.qvel[vadr : vadr + 6] = 0.0
        mujoco.mj_forward(self.model, self.data)

    def clear_table(self) -> None:
        """Every cube and the bowl off camera: the table as an arm-mask calibration sees it (`pose_arm`)."""
        for i, color in enumerate(COLORS):  # side by side: a later physics step finds them apart
            self.place_cube(color, ObjectPose(OFF_CAMERA_CUBE[0] + 0.06 * i, OFF_CAMERA_CUBE[1], 0.0))
        self.model.body("bowl").pos[:2] = OFF_CAMERA_BOWL
        mujoco.mj_forward(self.model, self.data)

    def pose_arm(self, joints: np.ndarray) -> None:
        """Put the arm at `joints` (the robot config's order, gripper last) without physics: a replay of
        recorded joint states for rendering, as a trajectory controller would reach them."""
        joints = np.asarray(joints, dtype=np.float64)
        if joints.shape != (len(self._qpos_adr),):
            raise ValueError(f"joints of shape {joints.shape}; expected ({len(self._qpos_adr)},) in the order "
                             f"{self.robot.joint_names}")
        self._set_joints(joints)
        mujoco.mj_forward(self.model, self.data)

    def _set_joints(self, joints: np.ndarray) -> None:
        """The robot's joint positions (and the mirrored finger) in qpos; no forward pass."""
        self.data.qpos[self._qpos_adr] = joints
        self.data.qpos[self._mirror_finger] = joints[-1]

    # --- physics ----------------------------------------------------------------------------
    def step(self, target: np.ndarray) -> None:
        """Advance one control period, interpolating joint targets linearly as a trajectory controller does."""
        start = self._ctrl_prev
        for k in range(1, self.substeps + 1):
            self.data.ctrl[:] = start + (target - start) * (k / self.substeps)
            mujoco.mj_step(self.model, self.data)
        self._ctrl_prev = np.array(target, dtype=np.float64)

    def warnings(self) -> dict[str, int]:
        """MuJoCo warnings raised so far (instability, contact overflow, ...), by name."""
        return {
            mujoco.mjtWarning(i).name: int(w.number) for i, w in enumerate(self.data.warning) if w.number
        }

    # --- state ------------------------------------------------------------------------------
    def joint_positions(self) -> np.ndarray:
        return self.data.qpos[self._qpos_adr].astype(np.float32)

    def cube_pos(self, color: str) -> np.ndarray:
        return self.data.body(cube(color)).xpos.copy()

    def cube_yaw(self, color: str) -> float:
        mat = self.data.body(cube(color)).xmat.reshape(3, 3)
        # A cube's yaw is defined modulo 90 degrees; use the face normal closest to horizontal.
        axis = max(range(3), key=lambda i: -abs(mat[2, i]))
        return float(np.arctan2(mat[1, axis], mat[0, axis]))

    def bowl_pos(self) -> np.ndarray:
        return self.data.body("bowl").xpos.copy()

    def tcp_pos(self) -> np.ndarray:
        return self.data.site(TCP_SITE).xpos.copy()

    def tcp_yaw(self) -> float:
        """The TCP's yaw about world z (`ik.down_rotation`'s angle: 0 at the home orientation)."""
        mat = self.data.site(TCP_SITE).xmat.reshape(3, 3)
        return float(np.arctan2(mat[1, 0], mat[0, 0]))

    def environment_state(self) -> np.ndarray:
        """Privileged object positions (m, world frame), in `ENVIRONMENT_STATE_NAMES` order."""
        parts = [self.cube_pos(c) for c in COLORS] + [self.bowl_pos()[:2], self.tcp_pos()]
        return np.concatenate(parts).astype(np.float32)

    def _contacts_of(self, geom_id: int) -> set[int]:
        """Geoms touching `geom_id` now."""
        c = self.data.contact[: self.data.ncon]
        touching = set(c.geom2[c.geom1 == geom_id]) | set(c.geom1[c.geom2 == geom_id])
        return {int(g) for g in touching}

    def is_held(self, color: str) -> bool:
        """Both finger pads touch the cube: it is held by friction."""
        return self._pad_ids <= self._contacts_of(self._cube_geom[color])

    def robot_touches(self, color: str) -> bool:
        touching = self._contacts_of(self._cube_geom[color])
        return any(self.model.geom_bodyid[g] in self._robot_bodies for g in touching)

    # --- rendering --------------------------------------------------------------------------
    def render(self, camera: str) -> np.ndarray:
        """An RGB image (uint8, H x W x 3) from a named camera of the robot config."""
        if camera not in self._renderers:
            spec = next(c for c in self.robot.cameras if c.name == camera)
            h, w = self._image_size or (spec.height, spec.width)
            self._renderers[camera] = mujoco.Renderer(self.model, h, w)
        renderer = self._renderers[camera]
        renderer.update_scene(self.data, camera)
        return renderer.render().copy()

    def close(self) -> None:
        for renderer in self._renderers.values():
            renderer.close()
        self._renderers.clear()
