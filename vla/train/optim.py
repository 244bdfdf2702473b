"""The optimizer and learning-rate schedule the training loop (vla.train.loop) gives an objective
that brings none, and the shape of the factories an objective brings its own through.

- AdamW with weight decay on weight matrices only (ndim >= 2): pulling a norm's gain or a bias
  toward zero only fights the normalisation and the init, it regularises nothing;
- linear warm-up, then cosine decay to 5% of the peak learning rate.

A schedule is built for a total step count, so the loop can rebuild it when a time budget fixes
the total (`vla.train.loop.Schedule`); LeRobot's peers bring their own presets (vla.peers.train).
"""

from __future__ import annotations

import math
from collections.abc import Callable
from typing import TYPE_CHECKING, Any

import torch
from torch import nn
from torch.optim import Optimizer
from torch.optim.lr_scheduler import LambdaLR, LRScheduler

if TYPE_CHECKING:  # the loop imports this module: its config is a name here, not an import
    from vla.train.loop import TrainConfig

FINAL_LR_FRACTION = 0.05  # the cosine ends here, not at 0: the last steps still learn

# (model, cfg) -> the optimizer over the parameters it trains.
OptimizerFn = Callable[[nn.Module, "TrainConfig"], Optimizer]
# (optimizer, cfg, total steps) -> the LR scheduler, stepped once per optimizer step, ending at the total.
ScheduleFn = Callable[[Optimizer, "TrainConfig", int], LRScheduler]


def param_groups(model: nn.Module, weight_decay: float) -> list[dict[str, Any]]:
    """AdamW groups of the trainable parameters: [weight matrices (ndim >= 2) with
    `weight_decay`, everything else (norms, biases, other 1-D parameters) with none]."""
    params = [p for p in model.parameters() if p.requires_grad]
    return [{"params": [p for p in params if p.ndim >= 2], "weight_decay": weight_decay},
            {"params": [p for p in params if p.ndim < 2], "weight_decay": 0.0}]


def adamw(model: nn.Module, cfg: TrainConfig) -> Optimizer:
    """The default optimizer: AdamW over `param_groups` (decay on weight matrices only)."""
    return torch.optim.AdamW(param_groups(model, cfg.weight_decay), lr=cfg.lr, betas=(0.9, 0.95))


def warmup_cosine(warmup_steps: int, steps: int) -> Callable[[int], float]:
    """LR multiplier per step: linear warm-up over `warmup_steps`, then cosine down to
    FINAL_LR_FRACTION at `steps`. A plain function, so the scheduler's state_dict holds only its
    position: the total is the loop's, which a resumed run rebuilds the schedule for."""

    def multiplier(step: int) -> float:
        if step < warmup_steps:
            return (step + 1) / warmup_steps
        progress = min(1.0, (step - warmup_steps) / max(1, steps - warmup_steps))
        return FINAL_LR_FRACTION + (1 - FINAL_LR_FRACTION) * 0.5 * (1 + math.cos(math.pi * progress))

    return multiplier


def warmup_cosine_schedule(optimizer: Optimizer, cfg: TrainConfig, steps: int) -> LRScheduler:
    """The default schedule: `warmup_cosine` over `steps`."""
    return LambdaLR(optimizer, warmup_cosine(cfg.warmup_steps, steps))


def load_optimizer_state(optimizer: Optimizer, saved: dict[str, Any], model: nn.Module) -> None:
    """Load a saved optimizer state. One saved before the decay split (one group over all of
    `model`'s trainable parameters) is split as `param_groups` splits it, so those runs resume."""
    if len(saved["param_groups"]) == 1 and len(optimizer.param_groups) == 2:
        saved = _split_single_group(saved, model, optimizer.param_groups)
    optimizer.load_state_dict(saved)


def _split_single_group(saved: dict[str, Any], model: nn.Module, groups: list[dict[str, Any]]) -> dict[str, Any]:
    (old,) = saved["param_groups"]
    trainable = [p for p in model.parameters() if p.requires_grad]  # the order the single group had
    if len(old["params"]) != len(trainable):
        raise ValueError(f"the saved optimizer state holds {len(old['params'])} parameters; this model trains "
                         f"{len(trainable)}: resume with the model (and --lora setting) the run started with")
    new_index = {id(p): j for j, p in enumerate(groups[0]["params"] + groups[1]["params"])}
    moved = {i: new_index[id(p)] for i, p in zip(old["params"], trainable, strict=True)}
    n_decay = len(groups[0]["params"])
    return {"state": {moved[i]: s for i, s in saved["state"].items()},
            "param_groups": [{**old, "params": list(range(n_decay)), "weight_decay": groups[0]["weight_decay"]},
                             {**old, "params": list(range(n_decay, len(trainable))), "weight_decay": 0.0}]}
