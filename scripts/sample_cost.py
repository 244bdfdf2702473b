"""What one training sample costs, per layout of the tiny VLA (issue 29, "samples that cost less").

For each variant of the shipped recipe's model (continuous head, one position per step, physical
gripper, the named objects as training-only target; two 128 px cameras, 8 joints), one training
step at batch B on random inputs: the sequence length, FLOPs per sample (forward + backward,
counted by torch's FlopCounterMode) and samples/s on this machine's torch threads (median of
`--repeats` timed steps after two untimed). Variants change one thing each:

  baseline     the shipped layout (32 text positions, 16 px patch projection)
  text16       instructions padded to 16 positions (every single-step instruction is 7-10 tokens)
  conv         the convolutional stem (`vision_stem: conv`)
  one_camera   the scene camera only

    OMP_NUM_THREADS=1 python scripts/sample_cost.py --report out/bench/sample_cost.json
"""

from __future__ import annotations

import argparse
import json
import statistics
import time

import numpy as np
import torch
from torch.utils.flop_counter import FlopCounterMode

from vla.model.config import load_model_config
from vla.model.inputs import Batch
from vla.model.vla import new_model
from vla.train.loop import machine

RECIPE = {"action_head": "continuous", "action_tokens": "per_step", "gripper": "physical", "gripper_dim": 7,
          "aux_targets": ["observation.named_objects"], "aux_dim": 6}
VARIANTS = {
    "baseline": {},
    "text16": {"max_text_tokens": 16},
    "conv": {"vision_stem": "conv"},
    "one_camera": {"cameras": ["scene"]},
}
INSTRUCTION = "place the red cube in the bowl"


def measure(overrides: dict, batch: int, repeats: int) -> dict:
    cfg = load_model_config("tiny", **{"cameras": ["scene", "wrist"], "state_dim": 8, "action_dim": 8,
                                        "joint_names": [f"j{i}" for i in range(8)], **RECIPE, **overrides})
    torch.manual_seed(0)
    model = new_model(cfg, [INSTRUCTION], -np.ones(8), np.ones(8), -np.ones(8), np.ones(8)).train()
    g = torch.Generator().manual_seed(0)
    data = Batch(torch.rand(batch, len(cfg.cameras), 3, 128, 128, generator=g), [INSTRUCTION] * batch,
                 torch.rand(batch, 8, generator=g), torch.rand(batch, cfg.chunk_size, 8, generator=g),
                 torch.rand(batch, 6, generator=g))
    opt = torch.optim.AdamW(model.parameters(), lr=1e-4)

    def step() -> None:
        loss, _ = model(data, 1.0, 0.0)
        opt.zero_grad(set_to_none=True)
        loss.backward()
        opt.step()

    with FlopCounterMode(display=False) as counter:
        loss, _ = model(data, 1.0, 0.0)
        loss.backward()
    opt.zero_grad(set_to_none=True)
    for _ in range(2):
        step()
    times = []
    for _ in range(repeats):
        start = time.perf_counter()
        step()
        times.append(time.perf_counter() - start)
    prefix, _ = model.prefix(Batch(data.images[:1], [INSTRUCTION], data.state[:1]))
    return {"sequence": int(prefix.shape[1] + model.queries(1).shape[1]) + (1 if cfg.aux_targets else 0),
            "text_positions": cfg.max_text_tokens, "parameters": sum(p.numel() for p in model.parameters()),
            "gflops_per_sample": round(counter.get_total_flops() / batch / 1e9, 3),
            "samples_per_s": round(batch / statistics.median(times), 1)}


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--batch-size", type=int, default=32)
    parser.add_argument("--repeats", type=int, default=5)
    parser.add_argument("--variants", default=",".join(VARIANTS))
    parser.add_argument("--report", default=None)
    args = parser.parse_args()
    report = {"machine": machine(), "batch_size": args.batch_size, "repeats": args.repeats, "variants": {}}
    for name in args.variants.split(","):
        report["variants"][name] = measure(VARIANTS[name], args.batch_size, args.repeats)
        print(name, report["variants"][name], flush=True)
    if args.report:
        with open(args.report, "w") as f:
            json.dump(report, f, indent=2)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
