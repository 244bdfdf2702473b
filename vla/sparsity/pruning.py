"""Query-agnostic pruning of visual tokens under a token budget, at prefill (SparseVILA's idea).

Before the language model runs, each camera keeps only `budget` of its image tokens, chosen to
cover the image's content rather than by any one query (in the spirit of MMTok's coverage
criterion): a greedy facility-location selection on cosine similarity, which repeatedly adds
the token that most raises the sum, over all of the camera's tokens, of their similarity to the
nearest kept token. Redundant tokens (a plain table top, a wall) collapse onto one kept token;
distinct ones (the cubes, the gripper) are kept.

The kept tokens keep their original positions (rotary position ids are passed explicitly), so
the language model sees the same geometry with holes. With a budget of every token the result
equals the unpruned model (tested); below that it is an approximation whose effect on success
`vla bench sparsity` measures.
"""

from __future__ import annotations

import torch
import torch.nn.functional as F

from vla.model.vla import Batch, VLAModel


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


@torch.no_grad()
def predict_pruned(model: VLAModel, batch: Batch, features: torch.Tensor, keep: list[torch.Tensor],
                   decoding: str = "parallel", retrieve: int | None = None) -> torch.Tensor:
    """(1, K*D) action bins with only the kept image tokens of each camera in the language model.

    features: (N_cameras, T, d) connector output; keep: per camera, indices into its T tokens.
    retrieve (autoregressive only): query-aware retrieval at decode time. After the prefill, the
    `retrieve` kept image tokens per camera whose last-layer states are most similar to the
    prefill's last state (the query: instruction and joint state, having read the images) stay
    visible; the decode steps attend to those cached keys/values only. The first action token
    comes from the full prefill; with `retrieve` >= the kept tokens nothing changes (tested)."""
    text_model = model.hf.model.text_model
    ids, mask, _ = model.prefix(batch)
    P, N = ids.shape[1], model.config.num_action_tokens
    image_pos = (ids[0] == model.layout.image_token_id).nonzero().flatten()
    T = features.shape[1]
    kept = torch.zeros(len(image_pos), dtype=torch.bool, device=ids.device)
    for c, k in enumerate(keep):
        kept[c * T + k.to(ids.device)] = True
    if decoding == "parallel":
        seq = torch.cat([ids, model._queries(1)], 1)
        seq_mask = torch.cat([mask, torch.ones((1, N), dtype=mask.dtype, device=mask.device)], 1)
    elif decoding == "autoregressive":
        seq, seq_mask = ids, mask
    else:
        raise ValueError(f"decoding={decoding!r}; expected 'parallel' or 'autoregressive'")
    emb = text_model.get_input_embeddings()(seq)
    emb[:, image_pos] = features.reshape(-1, features.shape[-1]).to(emb.dtype)
    keep_seq = torch.ones(seq.shape[1], dtype=torch.bool, device=ids.device)
    keep_seq[image_pos[~kept]] = False
    positions = torch.arange(seq.shape[1], device=ids.device)[keep_seq][None]
    out = text_model(inputs_embeds=emb[:, keep_seq], attention_mask=seq_mask[:, keep_seq], position_ids=positions,
                     use_cache=decoding == "autoregressive")
    if decoding == "parallel":
        return model._action_logits(out.last_hidden_state[:, -N:]).argmax(-1)
    cache, h, att = out.past_key_values, out.last_hidden_state[:, -1:], seq_mask[:, keep_seq].clone()
    if retrieve is not None:
        if retrieve < 1:
            raise ValueError(f"retrieve={retrieve}; expected at least 1 visual token per camera")
        kept_positions = keep_seq.nonzero().flatten()  # sequence index of each kept position
        states = F.normalize(out.last_hidden_state[0].float(), dim=-1)
        relevance = states @ states[-1]
        for c in range(features.shape[0]):
            cam = image_pos[c * T : (c + 1) * T][kept[c * T : (c + 1) * T]]  # this camera's kept positions
            where = torch.searchsorted(kept_positions, cam)  # their index in the pruned sequence
            if len(where) > retrieve:
                dropped = where[relevance[where].argsort(descending=True)[retrieve:]]
                att[0, dropped] = 0
    tokens = []
    for j in range(N):
        token = model._action_logits(h).argmax(-1)
        tokens.append(token)
        if j == N - 1:
            break
        att = torch.cat([att, torch.ones_like(token)], 1)
        out = text_model(inputs_embeds=text_model.get_input_embeddings()(token + model.first_value_id),
                         attention_mask=att, position_ids=torch.tensor([[P + j]], device=ids.device),
                         past_key_values=cache, use_cache=True)
        cache, h = out.past_key_values, out.last_hidden_state
    return torch.cat(tokens, 1)
