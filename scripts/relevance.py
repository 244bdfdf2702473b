"""Which scene-camera patches a policy's actions depend on (issue 33): the named cube's, the other cubes', the
moving arm's share of `action_saliency` and of `instruction_relevance`.

For each seed of a task the expert runs `--ticks` ticks (12: the arm on its way; 0: the arm at home);
the arm's patches are those its last tick changed (more than 200 levels summed over a patch's pixels),
a cube's are those that change when it is taken off the table, less the arm's. Then each of the three
colours is named in turn.

    OMP_NUM_THREADS=1 python scripts/relevance.py --seeds 10 --ticks 0 --report out/bench/relevance_t0.json
    OMP_NUM_THREADS=1 python scripts/relevance.py --seeds 10 --ticks 12 --report out/bench/relevance_t12.json
"""

from __future__ import annotations

import argparse
import json

import numpy as np
import torch

from sim import make_env
from sim.tabletop.experts import ScriptedExpert
from sim.tabletop.scene import COLORS, ObjectPose
from vla.evaluate import write_report
from vla.model.inputs import observation_batch
from vla.model.vla import VLAModel
from vla.sparsity.relevance import action_saliency, instruction_relevance

SCENE = "observation.images.scene"


def patches(diff: np.ndarray, grid: int = 8, level: int = 200) -> np.ndarray:
    h = diff.shape[0] // grid
    return diff.reshape(grid, h, grid, h).sum((1, 3)) > level


def cube_patches(env, color: str) -> np.ndarray:
    scene = env.unwrapped.scene
    with_cube = env.unwrapped._observation()[SCENE].astype(int)
    pos, yaw = scene.cube_pos(color), scene.cube_yaw(color)
    scene.place_cube(color, ObjectPose(0.05, 0.55, 0.0))  # off camera
    without = env.unwrapped._observation()[SCENE].astype(int)
    scene.place_cube(color, ObjectPose(float(pos[0]), float(pos[1]), yaw))
    return patches(np.abs(with_cube - without).sum(-1))


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--policy", default="policies/tiny_sim_single")
    parser.add_argument("--task", default="touch")
    parser.add_argument("--seeds", type=int, default=10)
    parser.add_argument("--ticks", type=int, default=12, help="expert ticks before the weights are taken")
    parser.add_argument("--report", default=None)
    args = parser.parse_args()
    torch.set_num_threads(1)
    model = VLAModel.from_pretrained(args.policy)
    env = make_env(args.task)
    rows = []
    for seed in range(args.seeds):
        obs, _ = env.reset(seed=seed)
        expert = ScriptedExpert(env)
        expert.reset()
        before = obs[SCENE].astype(int)
        for _ in range(args.ticks):
            before = obs[SCENE].astype(int)
            obs, *_ = env.step(expert.predict_chunk(obs)[0])
        arm = patches(np.abs(obs[SCENE].astype(int) - before).sum(-1))  # none at tick 0
        cubes = {c: cube_patches(env, c) for c in COLORS}
        for named in COLORS:
            batch = observation_batch({**obs, "task": f"{args.task} the {named} cube"}, model.config,
                                      model.vision_size, model.device)
            for kind, weights in (("saliency", action_saliency), ("instruction", instruction_relevance)):
                w = weights(model, batch)[0].numpy()  # the scene camera
                others = [float(w[cubes[c] & ~arm].sum()) for c in COLORS if c != named]
                rows.append({"seed": seed, "named": named, "weights": kind,
                             "named_share": float(w[cubes[named] & ~arm].sum()), "other_cubes_share": max(others),
                             "arm_share": float(w[arm].sum()), "arm_patches": int(arm.sum())})
    summary = {}
    for kind in ("saliency", "instruction"):
        r = [x for x in rows if x["weights"] == kind]
        summary[kind] = {
            "cases": len(r),
            "named_cube_first": sum(x["named_share"] > x["other_cubes_share"] for x in r),
            "named_share_median": round(float(np.median([x["named_share"] for x in r])), 3),
            "other_cube_share_median": round(float(np.median([x["other_cubes_share"] for x in r])), 3),
            "arm_share_median": round(float(np.median([x["arm_share"] for x in r])), 3),
            "named_above_arm": sum(x["named_share"] > x["arm_share"] for x in r)}
    report = {"command": f"python scripts/relevance.py --policy {args.policy} --task {args.task} --seeds {args.seeds} "
                         f"--ticks {args.ticks}",
              "summary": summary, "rows": rows}
    print(json.dumps(summary, indent=2))
    if args.report:
        write_report(report, args.report, quiet=True)
    env.close()
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
