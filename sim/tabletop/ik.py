"""Inverse kinematics for the tool centre point with MuJoCo's Jacobians (damped least squares).

Solves for arm joint targets that put the TCP at a position with the fingers pointing straight
down and a given yaw. A null-space term pulls towards the home posture so that repeated solves
stay in one smooth branch. Works on a private MjData: the simulation is never touched.
"""

from __future__ import annotations

import mujoco
import numpy as np

from vla.robot import RobotConfig


def down_rotation(yaw: float) -> np.ndarray:
    """TCP frame with z pointing down and the finger axis (y) at angle `yaw + pi/2` about world z."""
    c, s = np.cos(yaw), np.sin(yaw)
    # At yaw 0 this is the Panda home orientation: x forward, y to the right, z down.
    return np.array([[c, s, 0.0], [s, -c, 0.0], [0.0, 0.0, -1.0]])


class TcpIK:
    def __init__(self, model: mujoco.MjModel, robot: RobotConfig, site: str = "tcp"):
        self.model = model
        self.data = mujoco.MjData(model)
        self.site = model.site(site).id
        arm = [j.name for j in robot.joints]
        self.qadr = np.array([model.joint(n).qposadr[0] for n in arm])
        self.dofs = np.array([model.joint(n).dofadr[0] for n in arm])
        self.lower = np.array([j.lower for j in robot.joints])
        self.upper = np.array([j.upper for j in robot.joints])
        self.home = np.array(robot.home[: len(arm)])
        self._jp = np.zeros((3, model.nv))
        self._jr = np.zeros((3, model.nv))

    def forward(self, q: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        """TCP position and rotation matrix for arm joints q."""
        self.data.qpos[self.qadr] = q
        mujoco.mj_kinematics(self.model, self.data)
        return self.data.site_xpos[self.site].copy(), self.data.site_xmat[self.site].reshape(3, 3).copy()

    def solve(self, pos: np.ndarray, rot: np.ndarray, q0: np.ndarray, iters: int = 30,
              damping: float = 1e-3, tol: float = 1e-4) -> np.ndarray:
        """Arm joint targets reaching (pos, rot), starting from q0."""
        q = np.array(q0, dtype=np.float64)
        for _ in range(iters):
            p, r = self.forward(q)
            err_p = pos - p
            # Small-angle rotation error: half the sum of cross products of matching axes.
            err_r = 0.5 * sum(np.cross(r[:, i], rot[:, i]) for i in range(3))
            err = np.concatenate([err_p, err_r])
            if np.linalg.norm(err) < tol:
                break
            mujoco.mj_comPos(self.model, self.data)
            mujoco.mj_jacSite(self.model, self.data, self._jp, self._jr, self.site)
            jac = np.vstack([self._jp[:, self.dofs], self._jr[:, self.dofs]])  # (6, 7)
            jjt = jac @ jac.T + damping * np.eye(6)
            pinv = jac.T @ np.linalg.solve(jjt, np.eye(6))  # (7, 6)
            null = np.eye(len(q)) - pinv @ jac
            dq = pinv @ err + null @ (0.1 * (self.home - q))
            q = np.clip(q + dq, self.lower, self.upper)
        return q
