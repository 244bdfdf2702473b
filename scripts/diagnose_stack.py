"""Where stacking fails (issue 17): the stages of each `stack` episode, for the scripted expert and for
the oracle MLP (privileged state: `vla bench oracle-mlp`), on the same seeds.

Per episode: did the gripper ever hold the named cube (grasp) or the other one (wrong cube), how far
(xy) the held cube's centre was from the bottom cube's at the moment of release, how high above it,
and the outcome. Stacking succeeds when the top cube rests within half a cube (2 cm) of the bottom
cube's centre, one cube height above it (sim/tabletop/describer.py `on_cube`). Each episode runs through
`vla.evaluate.rollout` (control loop and safety filter) with an observer. A diagnostic, not a test.

    OMP_NUM_THREADS=1 python scripts/diagnose_stack.py --demos 300 --episodes 20 --report out/bench/stack.json
"""

from __future__ import annotations

import argparse
import copy
import json
import time

import numpy as np

from sim.tabletop.scene import COLORS
from vla.evaluate import rollout
from vla.types import OBS_ENV_STATE, OBS_NAMED


def stack_episode(env, policy, seed: int) -> dict:
    """One episode through `vla.evaluate.rollout` (the control loop and its safety filter, as every
    evaluation runs); the stage facts are read from the sim after every step."""
    facts = {"grasped": False, "wrong": False, "release": None, "held_before": False}

    def observe(steps, env, status):
        scene, sub = env.unwrapped.scene, env.unwrapped.episode.subtasks[0]
        top, bottom = sub.target, sub.dest
        held = scene.is_held(top)
        facts["grasped"] |= held
        facts["wrong"] |= any(scene.is_held(c) for c in COLORS if c != top)
        if facts["held_before"] and not held and facts["release"] is None:  # the first release of the named cube
            a, b = scene.cube_pos(top), scene.cube_pos(bottom)
            facts["release"] = {"step": steps, "xy_error_mm": round(float(np.linalg.norm(a[:2] - b[:2])) * 1000, 1),
                                "height_above_mm": round(float(a[2] - b[2]) * 1000, 1)}
        facts["held_before"] = held

    result = rollout(env, policy, seed, observe=observe)
    scene, sub = env.unwrapped.scene, env.unwrapped.episode.subtasks[0]
    a, b = scene.cube_pos(sub.target), scene.cube_pos(sub.dest)
    return {"seed": seed, "success": result.success, "steps": result.steps, "grasped": facts["grasped"],
            "wrong_cube": facts["wrong"], "release": facts["release"],
            "final_xy_error_mm": round(float(np.linalg.norm(a[:2] - b[:2])) * 1000, 1),
            "final_height_above_mm": round(float(a[2] - b[2]) * 1000, 1)}


class Grounded:
    """The oracle policy also given `observation.named_objects` (the named cubes' positions, top then
    bottom) after the usual environment state: the selection the words leave the MLP to learn."""

    def __init__(self, policy):
        self.policy, self.metadata = policy, policy.metadata

    def reset(self) -> None:
        self.policy.reset()

    def predict_chunk(self, obs):
        obs = dict(obs)
        obs[OBS_ENV_STATE] = np.concatenate([obs[OBS_ENV_STATE], obs[OBS_NAMED]]).astype(np.float32)
        return self.policy.predict_chunk(obs)


def summarize(rows: list[dict]) -> dict:
    released = [r["release"] for r in rows if r["release"]]
    xy = np.array([r["xy_error_mm"] for r in released]) if released else np.zeros(0)
    return {"episodes": len(rows), "successes": sum(r["success"] for r in rows),
            "grasped": sum(r["grasped"] for r in rows), "wrong_cube": sum(r["wrong_cube"] for r in rows),
            "released": len(released),
            "release_xy_error_mm": {"median": round(float(np.median(xy)), 1) if len(xy) else None,
                                    "p90": round(float(np.percentile(xy, 90)), 1) if len(xy) else None,
                                    "within_20mm": int((xy < 20).sum())}}


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--demos", type=int, default=300, help="expert stack episodes the oracle trains on")
    parser.add_argument("--episodes", type=int, default=20, help="evaluation seeds 0..N-1")
    parser.add_argument("--train-steps", type=int, default=4000)
    parser.add_argument("--n-action-steps", default="10", help="comma list: actions executed per chunk")
    parser.add_argument("--grounded", action="store_true",
                        help="also an oracle given observation.named_objects (see `Grounded`)")
    parser.add_argument("--aux", action="store_true",
                        help="also an oracle trained to predict observation.named_objects beside its chunk")
    parser.add_argument("--skip-expert", action="store_true")
    parser.add_argument("--skip-plain", action="store_true", help="no plain oracle arm")
    parser.add_argument("--report", default=None)
    args = parser.parse_args()

    from sim import make_env
    from sim.tabletop.experts import ScriptedExpert
    from vla.bench.oracle import OracleData, OraclePolicy, train_oracle
    from vla.train.rollouts import SimDemos

    env = make_env("stack")
    report: dict = {"command": "python scripts/diagnose_stack.py " + " ".join(
        f"--{k.replace('_', '-')} {v}" for k, v in vars(args).items() if v is not None)}
    if not args.skip_expert:
        rows = [stack_episode(env, ScriptedExpert(env), s) for s in range(args.episodes)]
        report["expert"] = {"summary": summarize(rows), "episodes": rows}
        print("expert", json.dumps(report["expert"]["summary"]), flush=True)

    t0 = time.perf_counter()
    demos = SimDemos(["stack"], args.demos, progress=False, images=False)  # the oracle reads no camera
    data = OracleData(demos, chunk_size=20)
    arms = []
    if not args.skip_plain:
        model, trained = train_oracle(data, 20, args.train_steps, 256, seed=0)
        report["oracle_training"] = {"demos": args.demos, "frames": data.frames, **trained,
                                     "wall_s": round(time.perf_counter() - t0, 1)}
        print("trained", json.dumps(report["oracle_training"]), flush=True)
        arms.append(("oracle", model, data, False))
    named = np.concatenate([e[OBS_NAMED] for e in demos.episodes]).astype(np.float32)
    if args.aux:
        aux_model, report["aux_training"] = train_oracle(data, 20, args.train_steps, 256, seed=0, aux=named)
        arms.append(("aux", aux_model, data, False))
    if args.grounded:
        given = copy.copy(data)
        given.env = np.concatenate([data.env, named], axis=1)
        grounded_model, report["grounded_training"] = train_oracle(given, 20, args.train_steps, 256, seed=0)
        arms.append(("grounded", grounded_model, given, True))
    for name, net, inputs, wrap in arms:
        for n in (int(v) for v in args.n_action_steps.split(",")):
            policy = OraclePolicy(net, inputs, env, n)
            policy = Grounded(policy) if wrap else policy
            rows = [stack_episode(env, policy, s) for s in range(args.episodes)]
            report[f"{name}_n{n}"] = {"summary": summarize(rows), "episodes": rows}
            print(f"{name} n_action_steps={n}", json.dumps(report[f"{name}_n{n}"]["summary"]), flush=True)
    if args.report:
        from vla.evaluate import write_report

        write_report(report, args.report, quiet=True)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
