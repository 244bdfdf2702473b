"""Where stacking fails (issue 17): the stages of each `stack` episode, for the scripted expert and for
the oracle MLP (privileged state: `vla bench oracle-mlp`), on the same seeds.

Per episode: did the gripper ever hold the named cube (grasp) or the other one (wrong cube), how far
(xy) the held cube's centre was from the bottom cube's at the moment of release, how high above it,
and the outcome. Stacking succeeds when the top cube rests within half a cube (2 cm) of the bottom
cube's centre, one cube height above it (sim/describer.py `on_cube`). A diagnostic, not a test.

    OMP_NUM_THREADS=1 python scripts/diagnose_stack.py --demos 300 --episodes 20 --report out/bench/stack.json
"""

from __future__ import annotations

import argparse
import json
import time

import numpy as np

from sim.scene import COLORS


def rollout(env, policy, seed: int) -> dict:
    """One episode; the stage facts are read from the sim after every step."""
    obs, info = env.reset(seed=seed)
    policy.reset()
    scene, sub = env.unwrapped.scene, env.unwrapped.episode.subtasks[0]
    top, bottom = sub.target, sub.dest
    grasped = wrong = False
    release = None
    held_before = False
    steps, success = 0, False
    max_steps = env.unwrapped.spec_task.max_steps
    while steps < max_steps and not success:
        for action in policy.predict_chunk(obs):
            obs, _, terminated, truncated, info = env.step(action)
            steps += 1
            held = scene.is_held(top)
            grasped |= held
            wrong |= any(scene.is_held(c) for c in COLORS if c != top)
            if held_before and not held and release is None:  # the first release of the named cube
                a, b = scene.cube_pos(top), scene.cube_pos(bottom)
                release = {"step": steps, "xy_error_mm": round(float(np.linalg.norm(a[:2] - b[:2])) * 1000, 1),
                           "height_above_mm": round(float(a[2] - b[2]) * 1000, 1)}
            held_before = held
            success = bool(info["success"])
            if success or terminated or truncated or steps >= max_steps:
                break
        if terminated or truncated:
            break
    a, b = scene.cube_pos(top), scene.cube_pos(bottom)
    return {"seed": seed, "success": success, "steps": steps, "grasped": grasped, "wrong_cube": wrong,
            "release": release, "final_xy_error_mm": round(float(np.linalg.norm(a[:2] - b[:2])) * 1000, 1),
            "final_height_above_mm": round(float(a[2] - b[2]) * 1000, 1)}


def grounded(env_state: np.ndarray, text: str) -> np.ndarray:
    """The named cubes' positions, in the instruction's order (top, then bottom): the selection that
    the words-and-order features leave the MLP to learn, given."""
    named = sorted((text.find(c), c) for c in COLORS if c in text)
    picks = [3 * COLORS.index(c) for _, c in named[:2]]
    return np.concatenate([env_state[..., i:i + 3] for i in picks], axis=-1)


class Grounded:
    """The oracle policy fed `grounded` features after the usual environment state."""

    def __init__(self, policy):
        self.policy, self.metadata = policy, policy.metadata

    def reset(self) -> None:
        self.policy.reset()

    def predict_chunk(self, obs):
        obs = dict(obs)
        env_state = np.asarray(obs["observation.environment_state"], dtype=np.float32)
        obs["observation.environment_state"] = np.concatenate([env_state, grounded(env_state, str(obs["task"]))])
        return self.policy.predict_chunk(obs)


def train_with_aux(data, texts: list[str], steps: int, seed: int, weight: float = 1.0):
    """The oracle MLP with one more output trained beside the chunk: the `grounded` positions, which it
    is not given (an auxiliary target, as issue 17's lever 3 proposes for the VLA). Inference reads
    the chunk only."""
    import torch

    from vla.bench.oracle import OracleMLP

    torch.manual_seed(seed)
    model = OracleMLP(data, 20)
    aux = torch.tensor(np.stack([grounded(e, t) for e, t in zip(data.env, texts, strict=True)]))
    aux_mean, aux_std = aux.mean(0), aux.std(0) + 1e-3
    chunk_out = model.net[-1].out_features
    model.net[-1] = torch.nn.Linear(model.net[-1].in_features, chunk_out + aux.shape[1])
    x = torch.tensor(data.inputs())
    y = (torch.tensor(data.relative.reshape(data.frames, -1)) - model.y_mean) / model.y_std
    a = (aux - aux_mean) / aux_std
    opt = torch.optim.AdamW(model.parameters(), lr=1e-3, weight_decay=1e-4)
    schedule = torch.optim.lr_scheduler.CosineAnnealingLR(opt, steps)
    generator = torch.Generator().manual_seed(seed)
    for _ in range(steps):
        i = torch.randint(0, data.frames, (256,), generator=generator)
        out = model(x[i])
        loss = (out[:, :chunk_out] - y[i]).abs().mean() + weight * (out[:, chunk_out:] - a[i]).abs().mean()
        opt.zero_grad(set_to_none=True)
        loss.backward()
        opt.step()
        schedule.step()
    model.eval()
    forward = model.forward
    model.forward = lambda inputs: forward(inputs)[:, :chunk_out]  # the chunk only, as OraclePolicy reads it
    return model


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
                        help="also an oracle given the named cubes' positions in order (see `grounded`)")
    parser.add_argument("--aux", action="store_true",
                        help="also an oracle trained to predict the `grounded` positions beside its chunk")
    parser.add_argument("--skip-expert", action="store_true")
    parser.add_argument("--skip-plain", action="store_true", help="no plain oracle arm")
    parser.add_argument("--report", default=None)
    args = parser.parse_args()

    from sim import make_env
    from sim.experts import ScriptedExpert
    from vla.bench.oracle import OracleData, OraclePolicy, train_oracle
    from vla.train.rollouts import SimDemos

    env = make_env("stack")
    report: dict = {"command": "python scripts/diagnose_stack.py " + " ".join(
        f"--{k.replace('_', '-')} {v}" for k, v in vars(args).items() if v is not None)}
    if not args.skip_expert:
        rows = [rollout(env, ScriptedExpert(env), s) for s in range(args.episodes)]
        report["expert"] = {"summary": summarize(rows), "episodes": rows}
        print("expert", json.dumps(report["expert"]["summary"]), flush=True)

    t0 = time.perf_counter()
    demos = SimDemos(["stack"], args.demos, progress=False)
    data = OracleData(demos, chunk_size=20)
    arms = []
    if not args.skip_plain:
        model, trained = train_oracle(data, 20, args.train_steps, 256, seed=0)
        report["oracle_training"] = {"demos": args.demos, "frames": data.frames, **trained,
                                     "wall_s": round(time.perf_counter() - t0, 1)}
        print("trained", json.dumps(report["oracle_training"]), flush=True)
        arms.append(("oracle", model, False))
    texts = [str(t) for e in demos.episodes for t in e["task"]]
    if args.aux:
        arms.append(("aux", train_with_aux(data, texts, args.train_steps, seed=0), False))
    if args.grounded:
        named = np.stack([grounded(e, t) for e, t in zip(data.env, texts, strict=True)])
        data.env = np.concatenate([data.env, named], axis=1)
        grounded_model, trained = train_oracle(data, 20, args.train_steps, 256, seed=0)
        report["grounded_training"] = trained
        arms.append(("grounded", grounded_model, True))
    for name, net, wrap in arms:
        for n in (int(v) for v in args.n_action_steps.split(",")):
            policy = OraclePolicy(net, data, env, n)
            policy = Grounded(policy) if wrap else policy
            rows = [rollout(env, policy, s) for s in range(args.episodes)]
            report[f"{name}_n{n}"] = {"summary": summarize(rows), "episodes": rows}
            print(f"{name} n_action_steps={n}", json.dumps(report[f"{name}_n{n}"]["summary"]), flush=True)
    if args.report:
        from vla.evaluate import write_report

        write_report(report, args.report, quiet=True)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
