"""Train several recipe arms at once on one GPU, from one set of expert episodes rolled out in memory.

How the GPU-trained policies in docs/BENCHMARKS.md were made, on a lent machine with no network and
no LeRobot (scripts/gpu_session.sh carries the few wheels it needs). The episodes are those `vla
record` keeps (seeds from 1000, successes only); each arm is `vla train` with its switches, run in a
forked process sharing the rollouts, for the time left before `--deadline`. Each arm's policy folder
is packed as OUT/<arm>.tar as soon as it is written (or its newest checkpoint when the deadline comes
first), so a cut-short session still brings policies back.

    python scripts/gpu_arms.py --out $OUT --episodes 300 --deadline $(( $(date +%s) + 400 ))
"""

from __future__ import annotations

import argparse
import multiprocessing as mp
import os
import tarfile
import time
from pathlib import Path

import numpy as np

from vla.types import OBS_ENV_STATE, OBS_NAMED

GROUNDED = {"gripper": "physical", "aux_targets": [OBS_ENV_STATE]}
ARMS = {  # name: `vla train` switches (model config overrides)
    "per_step": {"action_tokens": "per_step", **GROUNDED},
    "per_dim": {**GROUNDED},
    "continuous": {"action_head": "continuous", "action_tokens": "per_step", **GROUNDED},
    # The objects the instruction names as the grounding target (scripts/diagnose_stack.py: the oracle
    # MLP grasps the named cube in 8/20 stack episodes, 14/20 trained to predict them; stacks 18/20 given them).
    "per_step_named": {"action_tokens": "per_step", "gripper": "physical", "aux_targets": [OBS_NAMED]},
    "continuous_named": {"action_head": "continuous", "action_tokens": "per_step", "gripper": "physical",
                         "aux_targets": [OBS_NAMED]},
    # Issue 29's first perception switch: 3x3 stride-2 convolutions down to the patch grid (docs/BENCHMARKS.md,
    # "Perception that learns fast": lower loss per step and per CPU-second than the patch at 40 minutes).
    "continuous_named_conv": {"action_head": "continuous", "action_tokens": "per_step", "gripper": "physical",
                              "aux_targets": [OBS_NAMED], "vision_stem": "conv"},
}


def _train_arm(name: str, demos, work: Path, budget_s: float, args: argparse.Namespace) -> None:
    import torch

    from vla.train.trainer import TrainConfig, train

    torch.set_num_threads(args.threads)
    cfg = TrainConfig(steps=10**7, batch_size=args.batch_size, lr=args.lr, warmup_steps=args.warmup_steps,
                      time_budget_s=budget_s, parallel_fraction=1.0, checkpoint_every=args.checkpoint_every,
                      log_every=100)
    summary = train(demos, work / name, "tiny", cfg, progress=False, model_overrides=dict(ARMS[name]))
    print(f"[{name}] done: {summary['steps']} steps in {summary['wall_time_s']} s", flush=True)


def _pack(folder: Path, tar_path: Path) -> None:
    """The policy files of `folder` (no checkpoints, no optimizer state) as one tar, written aside first."""
    tmp = tar_path.with_name(tar_path.name + ".tmp")
    with tarfile.open(tmp, "w") as tar:
        for item in sorted(folder.iterdir()):
            if item.is_file() and item.name != "training_state.pt":
                tar.add(item, arcname=item.name)
    tmp.replace(tar_path)


def _last_row(metrics: Path) -> str:
    try:
        lines = metrics.read_text().strip().splitlines()
        return lines[-1] if len(lines) > 1 else "starting"
    except FileNotFoundError:
        return "building"


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--out", required=True, help="where <arm>.tar files go")
    parser.add_argument("--work", default="/tmp/gpu_arms", help="training folders")
    parser.add_argument("--arms", default=",".join(ARMS))
    parser.add_argument("--tasks", default="single")
    parser.add_argument("--episodes", type=int, default=300, help="successful episodes per task")
    parser.add_argument("--detours", type=float, default=0.0,
                        help="share of recovery demonstrations (`vla train --sim-detours`)")
    parser.add_argument("--workers", type=int, default=max(1, (os.cpu_count() or 2) - 1))
    parser.add_argument("--deadline", type=float, required=True, help="epoch seconds by which every tar exists")
    parser.add_argument("--pack-margin", type=float, default=45.0, help="seconds kept for saving and packing")
    parser.add_argument("--batch-size", type=int, default=256)
    parser.add_argument("--lr", type=float, default=1e-3)
    parser.add_argument("--warmup-steps", type=int, default=300)
    parser.add_argument("--checkpoint-every", type=int, default=500)
    parser.add_argument("--threads", type=int, default=4, help="torch CPU threads per arm")
    args = parser.parse_args()
    import torch

    from sim import resolve_tasks
    from vla.train.rollouts import SimDemos

    # One thread here: a fork after an OpenMP pool has started deadlocks the child at its first
    # parallel region (libgomp); each arm sets its own threads after the fork.
    torch.set_num_threads(1)

    out, work = Path(args.out), Path(args.work)
    out.mkdir(parents=True, exist_ok=True)
    arms = args.arms.split(",")
    unknown = [a for a in arms if a not in ARMS]
    if unknown:
        parser.error(f"unknown arms {unknown}; known: {list(ARMS)}")
    t0 = time.time()
    demos = SimDemos(resolve_tasks(args.tasks), args.episodes, workers=args.workers, progress=False,
                     detours=args.detours)
    print(f"rollouts: {demos.num_episodes} episodes, {demos.num_frames} frames in {demos.roll_seconds:.0f} s",
          flush=True)
    first = demos.episodes[0]  # this machine's renderer, to compare with another's on the same seed
    np.savez_compressed(out / "render_check.npz", **{k: v[0] for k, v in first.items() if k.startswith("observation.")})
    for aux in {tuple(ARMS[a].get("aux_targets", ())) for a in arms}:  # built once each, shared by the forks
        demos.cache(20, 128, ("observation.state",), aux)
    print(f"cache built at {time.time() - t0:.0f} s", flush=True)
    budget = args.deadline - time.time() - args.pack_margin
    if budget < 60:
        print(f"only {budget:.0f} s left for training; stopping", flush=True)
        return 1
    ctx = mp.get_context("fork")  # the parent never touched CUDA; children share the rollouts
    procs = {a: ctx.Process(target=_train_arm, args=(a, demos, work, budget, args)) for a in arms}
    for p in procs.values():
        p.start()
    packed: set[str] = set()
    while len(packed) < len(arms):
        time.sleep(5)
        for a, p in procs.items():
            if a not in packed and not p.is_alive():
                if (work / a / "model.safetensors").exists():
                    _pack(work / a, out / f"{a}.tar")
                    print(f"[{a}] packed (exit {p.exitcode})", flush=True)
                else:
                    print(f"[{a}] failed (exit {p.exitcode})", flush=True)
                packed.add(a)
        if int(time.time()) % 30 < 5:
            for a in arms:
                print(f"[{a}] {_last_row(work / a / 'metrics.csv')}", flush=True)
        if time.time() > args.deadline - 10:  # out of time: newest checkpoints, unannealed
            for a, p in procs.items():
                if a not in packed:
                    p.kill()
                    ckpts = sorted((work / a / "checkpoints").glob("step_*[0-9]"))
                    if ckpts:
                        _pack(ckpts[-1], out / f"{a}.tar")
                        print(f"[{a}] deadline: packed {ckpts[-1].name}", flush=True)
                    packed.add(a)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
