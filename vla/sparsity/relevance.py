"""Which image patches the policy's actions depend on: the relevance a task-aware trigger weighs changes by.

`action_saliency` is the gradient of the predicted chunk with respect to the input pixels, summed
(absolute) over each vision patch and normalized per camera: how much each patch moves the actions
the policy would send now. It follows the instruction by construction: the same scene told "touch
the red cube" and "touch the blue cube" puts its weight on different cubes (measured on the shipped
policy in docs/BENCHMARKS.md, "Which patches the actions depend on").

`instruction_relevance` keeps the part of that saliency the instruction adds: the saliency under the
instruction minus the saliency under a generic one (`GENERIC_INSTRUCTION`, clipped at zero). A policy
watches its own gripper whatever it is told; the difference takes some of that off but not enough:
with the arm moving, the arm's patches still outweigh the named cube's in most scenes (BENCHMARKS), so
a trigger needs an arm discount beside these weights. One backward pass per call (two for the
instruction's share), as costly as a few inferences of the tiny model: a trigger would compute it
when it re-plans, not at every tick.
"""

from __future__ import annotations

import torch

from vla.model.inputs import Batch
from vla.model.vla import VLAModel

GENERIC_INSTRUCTION = "the cube"  # a baseline instruction that names no object in particular


def action_saliency(model: VLAModel, batch: Batch) -> torch.Tensor:
    """(N, g, g) for a batch of one: per camera and vision patch, the share of |d actions / d pixels| (each
    camera sums to 1). Parallel decoding's query positions, the arm's and the gripper's values; the bins
    head's expected bin stands for its value."""
    if batch.images.shape[0] != 1:
        raise ValueError(f"action_saliency takes a batch of one observation, got {batch.images.shape[0]}")
    cfg = model.config
    ids, mask = model.prefix(batch)
    queries = model.queries(1)
    pixels = model.pixel_values(batch.images).detach().requires_grad_(True)
    with torch.enable_grad():
        out = model.language(torch.cat([ids, queries], 1), torch.cat([mask, torch.ones_like(queries)], 1),
                             pixels=pixels)
        values = model.head_outputs(out.last_hidden_state[:, -queries.shape[1]:])
        if cfg.action_head == "bins":  # the expected bin: differentiable where the argmax is not
            values = (values.float().softmax(-1) * torch.arange(cfg.bins, device=values.device)).sum(-1)
        (grad,) = torch.autograd.grad(values.float().abs().sum(), pixels)  # the weights' .grad untouched
    grad = grad.abs().sum(-3)  # (..., H, W): over colour channels, whatever the family's layout
    grad = grad.reshape(len(cfg.cameras), *grad.shape[-2:])
    size, grid = grad.shape[-1], model.hf.model.vision_model.embeddings.num_patches_per_side
    patch = size // grid
    per_patch = grad.reshape(len(cfg.cameras), grid, patch, grid, patch).sum((2, 4))
    return per_patch / per_patch.sum((1, 2), keepdim=True).clamp_min(1e-12)


def instruction_relevance(model: VLAModel, batch: Batch, generic: str = GENERIC_INSTRUCTION) -> torch.Tensor:
    """(N, g, g): the saliency the instruction adds over a generic one (clipped at 0), per camera summing to 1
    (uniform where the instruction adds nothing anywhere)."""
    told = action_saliency(model, batch)
    base = action_saliency(model, Batch(batch.images, [generic], batch.state))
    extra = (told - base).clamp_min(0)
    total = extra.sum((1, 2), keepdim=True)
    uniform = torch.full_like(extra, 1.0 / extra[0].numel())
    return torch.where(total > 0, extra / total.clamp_min(1e-12), uniform)
