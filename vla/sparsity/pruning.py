"""Query-agnostic pruning of visual tokens under a token budget, at prefill (SparseVILA's idea).

Before the language model runs, each camera keeps only `budget` of its image tokens, chosen to
cover the image's content rather than by any one query (in the spirit of MMTok's coverage
criterion): a greedy facility-location selection on cosine similarity, which repeatedly adds
the token that most raises the sum, over all of the camera's tokens, of their similarity to the
nearest kept token. Redundant tokens (a plain table top, a wall) collapse onto one kept token;
distinct ones (the cubes, the gripper) are kept.

The kept tokens keep their original positions (rotary position ids are passed explicitly), so
the language model sees the same geometry with holes: `VLAModel.decode(..., keep=...)` runs it
(`vla.model.engines.PrunedEngine`). With a budget of every token the result equals the unpruned
model (tested); below that it is an approximation whose effect on success `vla bench sparsity`
measures.
"""

from __future__ import annotations

import torch
import torch.nn.functional as F


def coverage_select(features: torch.Tensor, budget: int) -> torch.Tensor:
    """Sorted indices of `budget` tokens of (T, d) features that best cover all T (greedy facility location)."""
    T = features.shape[0]
    if budget >= T:
        return torch.arange(T, device=features.device)
    if budget < 1:
        raise ValueError(f"token budget {budget}; expected at least 1 token per camera")
    x = F.normalize(features.float(), dim=-1)
    sim = x @ x.T  # (T, T)
    best = torch.full((T,), -1.0, device=features.device)  # similarity of each token to its nearest kept one
    chosen: list[int] = []
    for _ in range(budget):
        gain = torch.clamp(sim - best[None, :], min=0).sum(1)  # coverage gained by adding each candidate
        if chosen:
            gain[chosen] = -1.0
        pick = int(gain.argmax())
        chosen.append(pick)
        best = torch.maximum(best, sim[pick])
    return torch.tensor(sorted(chosen), device=features.device)
