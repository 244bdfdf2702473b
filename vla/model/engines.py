"""How `VLAModel.decode` runs the backbone: one interface, three engines.

`decode` owns the one decoding loop (parallel: one prefill over the query tokens; autoregressive:
a prefill, then one token per step). An engine supplies the two calls it needs:

- `LibraryEngine`: the family's own forward with the library's KV cache (every backbone).
- `PrunedEngine`: only kept image tokens enter the language model (token pruning, retrieval).
- `vla.model.fast.StaticEngine`: static shapes, a preallocated cache, compiled steps (the GPU path).
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Protocol

import torch
import torch.nn.functional as F

if TYPE_CHECKING:
    from vla.model.vla import VLAModel
class Engine(Protocol):
    """How `VLAModel.decode` runs the backbone: a prefill that returns the action codes read at its
    last `n_out` positions (`VLAModel.read_actions`) (and keeps a KV cache when asked), and one-token steps after it."""

    def prefill(self, seq: torch.Tensor, mask: torch.Tensor, n_out: int, cache: bool) -> torch.Tensor: ...

    def step(self, token: torch.Tensor) -> torch.Tensor: ...


class LibraryEngine:
    """The family's own forward (every supported backbone) with the library's dynamic KV cache."""

    def __init__(self, model: VLAModel, pixels: torch.Tensor | None, image_features: torch.Tensor | None = None):
        self.model, self.vision = model, {"pixels": pixels, "image_features": image_features}

    def prefill(self, seq: torch.Tensor, mask: torch.Tensor, n_out: int, cache: bool) -> torch.Tensor:
        out = self.model.language(seq, mask, **self.vision, use_cache=cache)
        self.cache, self.mask = out.past_key_values, mask
        return self.model.read_actions(out.last_hidden_state[:, -n_out:])

    def step(self, token: torch.Tensor) -> torch.Tensor:
        self.mask = torch.cat([self.mask, torch.ones_like(token)], 1)
        out = self.model.language(token + self.model.first_value_id, self.mask, past_key_values=self.cache,
                                  use_cache=True)
        self.cache = out.past_key_values
        return self.model.read_actions(out.last_hidden_state)


class PrunedEngine:
    """Only the kept image tokens enter the language model (batch of one).

    The kept tokens keep their original positions (rotary ids passed explicitly), so the language
    model sees the same geometry with holes; with every token kept it equals the dense model.
    `retrieve` (autoregressive): after the prefill, only the `retrieve` kept image tokens per camera
    whose last-layer states are most similar to the prefill's last state (the query: instruction
    and joint state, having read the images) stay visible to the decode steps. The first action
    token comes from the full prefill; with `retrieve` >= the kept tokens nothing changes."""

    def __init__(self, model: VLAModel, features: torch.Tensor, keep: list[torch.Tensor] | None,
                 retrieve: int | None):
        if retrieve is not None and retrieve < 1:
            raise ValueError(f"retrieve={retrieve}; expected at least 1 visual token per camera")
        cams, T = features.shape[:2]
        keep = keep if keep is not None else [torch.arange(T)] * cams
        self.kept = torch.zeros(cams * T, dtype=torch.bool, device=features.device)
        for c, k in enumerate(keep):
            self.kept[c * T + k.to(features.device)] = True
        self.model, self.features, self.retrieve, self.T = model, features, retrieve, T

    def prefill(self, seq: torch.Tensor, mask: torch.Tensor, n_out: int, cache: bool) -> torch.Tensor:
        m = self.model
        image_pos = (seq[0] == m.layout.image_token_id).nonzero().flatten()
        keep_seq = torch.ones(seq.shape[1], dtype=torch.bool, device=seq.device)
        keep_seq[image_pos[~self.kept]] = False
        positions = torch.arange(seq.shape[1], device=seq.device)[keep_seq][None]
        out = m.text_model(inputs_embeds=m.embed(seq, self.features)[:, keep_seq], attention_mask=mask[:, keep_seq],
                           position_ids=positions, use_cache=cache)
        self.cache, self.att, self.position = out.past_key_values, mask[:, keep_seq].clone(), seq.shape[1]
        if self.retrieve is not None:
            self._retrieve(out.last_hidden_state[0], image_pos, keep_seq.nonzero().flatten())
        return m.read_actions(out.last_hidden_state[:, -n_out:])

    def _retrieve(self, states: torch.Tensor, image_pos: torch.Tensor, kept_positions: torch.Tensor) -> None:
        states = F.normalize(states.float(), dim=-1)
        relevance = states @ states[-1]
        T = self.T
        for c in range(self.features.shape[0]):
            cam = image_pos[c * T : (c + 1) * T][self.kept[c * T : (c + 1) * T]]  # this camera's kept positions
            where = torch.searchsorted(kept_positions, cam)  # their index in the pruned sequence
            if len(where) > self.retrieve:
                self.att[0, where[relevance[where].argsort(descending=True)[self.retrieve :]]] = 0

    def step(self, token: torch.Tensor) -> torch.Tensor:
        m = self.model
        self.att = torch.cat([self.att, torch.ones_like(token)], 1)
        out = m.text_model(inputs_embeds=m.text_model.get_input_embeddings()(token + m.first_value_id),
                           attention_mask=self.att, position_ids=torch.tensor([[self.position]], device=token.device),
                           past_key_values=self.cache, use_cache=True)
        self.cache, self.position = out.past_key_values, self.position + 1
        return m.read_actions(out.last_hidden_state)

