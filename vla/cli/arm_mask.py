"""`vla arm-mask`: learn which patches of the fixed cameras the arm covers at each joint state (the event
trigger's arm discount, vla.sparsity.arm) and save it in the policy folder, where `vla eval --sparse` and
`vla serve --sparse` find it.

The calibration recording is the arm moving over a cleared table: rendered from the scripted expert's
joint states in the simulator (default), or a LeRobot dataset recorded on the robot with the table
cleared (`--dataset`: its frames and `observation.state`).
"""

from __future__ import annotations

import argparse
import sys
import time
from pathlib import Path

from vla.loading import SHIPPED_POLICY


def add_arguments(parser: argparse.ArgumentParser) -> None:
    """The flags of `vla arm-mask`."""
    parser.add_argument("--policy", default=str(SHIPPED_POLICY), help="the policy folder whose cameras it is for")
    parser.add_argument("--tasks", default="single", help="simulator tasks whose expert motions are replayed")
    parser.add_argument("--episodes", type=int, default=20, help="expert episodes per task (simulator)")
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--dataset", default=None,
                        help="a LeRobot dataset of the arm moving over a cleared table, instead of the simulator")
    parser.add_argument("--robot", default=None, help="robot config (default: panda): its cameras not on the arm")
    parser.add_argument("--out", default=None, help="default: <policy>/arm_mask.safetensors")
    parser.add_argument("--report", default=None, help="write the held-out scores as JSON here")


def run(args: argparse.Namespace) -> int:
    from vla.evaluate import write_report
    from vla.model.vla import VLAModel
    from vla.robot import load_robot_config
    from vla.sparsity.arm import ARM_MASK, calibrate

    started = time.perf_counter()
    model = VLAModel.from_pretrained(args.policy, device="cpu")
    robot = load_robot_config(args.robot) if args.robot else load_robot_config()
    cameras = [c for c in robot.world_cameras if c in model.config.cameras]
    if not cameras:
        raise ValueError(f"the policy's cameras {model.config.cameras} include none of robot {robot.name!r}'s "
                         f"cameras not on the arm ({robot.world_cameras}): nothing to mask")
    grid = model.hf.model.vision_model.embeddings.num_patches_per_side
    if args.dataset:
        from vla.data.dataset import open_dataset

        states, frames, episodes = open_dataset(args.dataset).recording(cameras)
    else:
        from sim import resolve_tasks
        from sim.tabletop.calibrate import arm_sweep

        states, frames, episodes = arm_sweep(resolve_tasks(args.tasks), args.episodes, cameras, robot,
                                             seed=args.seed)
    mask, report = calibrate(states, frames, episodes, grid, seed=args.seed)
    out = Path(args.out) if args.out else Path(args.policy) / ARM_MASK
    mask.save(out)
    report.update(policy=str(args.policy), source=args.dataset or f"simulator: {args.tasks}, {args.episodes} "
                  f"expert episodes per task", out=str(out), wall_time_s=round(time.perf_counter() - started, 1))
    write_report(report, args.report)
    print(f"arm mask: {out}", file=sys.stderr)
    return 0
