"""`vla bench recipe`: what limits the learned policy, one change at a time.

Every arm trains the default tiny VLA on the same dataset with the same optimizer steps, batch,
seed and schedule (the shipped recipe: lr 6e-4, parallel decoding only), changing one thing, and
is scored the same two ways as `vla bench chunk`:

- open loop on a held-out dataset recorded from other seeds (joint error in mrad over the first
  and the executed actions, against holding still);
- closed loop through the `vla eval` harness, on the same seeded episodes in every arm.

Arms (`ARMS`):
- `baseline`: the shipped recipe.
- `oracle`: the privileged object positions (`observation.environment_state`: cube, bowl and TCP
  positions from the simulator) appended to the state tokens. A diagnostic, not a product
  feature: it bounds what better perception can give. A large gain over `baseline` says the
  policy fails at seeing or grounding the named object; no gain says the limit is elsewhere
  (action representation, multimodal demonstrations, compute).
- `full_train`: both decoding modes trained (parallel fraction 0.5, the library default), to
  place the shipped recipe's choice on the same footing.
- `gripper_physical`: absolute gripper targets and gripper state binned over the gripper's whole
  range (per-dimension percentiles can neither open it fully nor tell "closed on nothing" from
  "closed on a cube").
- `per_step`: one action position per time step (K instead of K x D), read out into D bins each.
- `continuous`: per step, an L1-regression head (OpenVLA-OFT's) instead of 256-way bins.
- `aux`: the privileged object positions as training-only grounding targets, regressed at one
  position after the actions (never decoded: inference costs the same as `baseline`).
- `aux_named`: the same, with the positions of the objects the instruction names instead
  (`observation.named_objects`: the cube acted on, then its goal). The oracle MLP on stacking
  (`scripts/diagnose_stack.py`) stacks 5/20 from every object's position and the words, 18/20 when
  given the named positions; trained to predict them beside its actions it grasps the named cube
  in 14 episodes instead of 8: selecting the named object is what it learns slowest.

Each arm's result is written to the report as soon as it exists, so a long run that is stopped
still leaves its figures; arms can run as separate processes (one per core) into separate reports.
"""

from __future__ import annotations

import json
from dataclasses import replace
from pathlib import Path
from typing import Any

import sim
from vla.bench.peers import machine, score
from vla.policy import VLAPolicy
from vla.train.trainer import TrainConfig, train
from vla.train.validate import open_loop_error
from vla.types import OBS_ENV_STATE, OBS_NAMED, OBS_STATE

ARMS: dict[str, dict[str, dict[str, Any]]] = {
    "baseline": {},
    "oracle": {"model": {"state_keys": [OBS_STATE, OBS_ENV_STATE]}},
    "full_train": {"train": {"parallel_fraction": 0.5}},
    "gripper_physical": {"model": {"gripper": "physical"}},
    "per_step": {"model": {"action_tokens": "per_step"}},
    "continuous": {"model": {"action_head": "continuous", "action_tokens": "per_step"}},
    "aux": {"model": {"aux_targets": [OBS_ENV_STATE]}},
    "aux_named": {"model": {"aux_targets": [OBS_NAMED]}},
}


def recipe_config(steps: int, batch_size: int, seed: int, **changes: Any):
    """The shipped policy's recipe at a budget of `steps`; `changes` override TrainConfig fields."""
    base = TrainConfig(steps=steps, batch_size=batch_size, seed=seed, lr=6e-4, parallel_fraction=1.0,
                       warmup_steps=min(300, max(1, steps // 10)), checkpoint_every=max(steps, 1))
    return replace(base, **changes)


def bench_recipe(dataset: str | Path, heldout: str | Path, arms: list[str], steps: int, episodes: int,
                 tasks: list[str], out: str | Path = "out/recipe", batch_size: int = 32, seed: int = 0,
                 report_path: str | Path | None = None, progress: bool = True) -> dict[str, Any]:
    unknown = sorted(set(arms) - set(ARMS))
    if unknown:
        raise ValueError(f"unknown arm(s) {unknown}; known: {sorted(ARMS)}")
    out = Path(out)
    taken = [str(out / a) for a in arms if (out / a).exists()]
    if taken:
        raise FileExistsError(f"{', '.join(taken)} already exist; remove them or pass another --out")
    report: dict[str, Any] = {
        "dataset": str(dataset), "heldout": str(heldout), "steps": steps, "batch_size": batch_size,
        "episodes_per_task": episodes, "seed": seed, "tasks": tasks, "machine": machine(), "arms": {},
    }
    for arm in arms:
        change = ARMS[arm]
        summary = train(dataset, out / arm, "tiny", recipe_config(steps, batch_size, seed, **change.get("train", {})),
                        progress=progress, model_overrides=dict(change.get("model", {})))
        policy = VLAPolicy.from_pretrained(out / arm)
        report["arms"][arm] = {
            "change": change, "train_wall_time_s": summary["wall_time_s"],
            "samples_per_s": round(steps * batch_size / summary["wall_time_s"], 1),
            "parameters": summary["parameters"], "open_loop": open_loop_error(policy.model, heldout),
            **score(arm, policy, tasks, sim.make_env, episodes, seed, progress),
        }
        if report_path:
            Path(report_path).parent.mkdir(parents=True, exist_ok=True)
            Path(report_path).write_text(json.dumps(report, indent=2))
    return report
