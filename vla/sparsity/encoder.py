"""Token-level reuse in the vision tower: re-encode only the patches that changed.

For each camera the encoder keeps, per vision layer, the keys and values of every patch, and
the tower's output per patch, from the last time each patch was encoded. A step with changed
patches C runs every layer on C only: the queries of C attend to fresh keys/values for C and
cached keys/values for the static patches (VLA-Cache's idea, applied inside the vision tower).
The connector and the language model then run as usual on the resulting image features.

Where exactness is kept, and where not:
- A step where every patch of a camera changed runs the library's own dense vision forward
  (hooks collect the keys/values for the cache), so its features equal the dense path exactly.
- A step where nothing changed reuses the cached features, which are exactly what the dense
  path computed from the reference frame; they differ from a dense encoding of the current
  frame only by what the event detector judged below threshold.
- A partial step is the approximation: a static patch's cached keys/values were computed when
  the changed patches still looked as before (in the dense path every token attends to every
  other, so a change anywhere nudges all of them). The changed patches themselves are
  computed exactly against that context.
- The language model still runs over every image position (its cost is not reduced here);
  `tokens` counts say so separately.

SmolVLM / Idefics3 vision towers (SigLIP-style encoder layers) are supported.
"""

from __future__ import annotations

from dataclasses import dataclass, field

import torch
import torch.nn.functional as F


@dataclass
class _CameraCache:
    keys: list[torch.Tensor] = field(default_factory=list)  # per layer (1, N, d)
    values: list[torch.Tensor] = field(default_factory=list)
    hidden: torch.Tensor | None = None  # (1, N, d) encoder output before post_layernorm


class SparseVisionEncoder:
    """Wraps a SmolVLM/Idefics3 model's vision tower and connector."""

    def __init__(self, hf_model: torch.nn.Module):
        core = hf_model.model
        if not hasattr(core, "vision_model") or not hasattr(core, "connector"):
            raise ValueError(
                f"{type(hf_model).__name__}: event-sparse vision needs a SmolVLM/Idefics3 backbone "
                "(vision_model + connector)"
            )
        self.vision = core.vision_model
        self.connector = core.connector
        self.layers = list(self.vision.encoder.layers)
        self.grid = self.vision.embeddings.num_patches_per_side
        self.cache: dict[str, _CameraCache] = {}
        self.encoded: dict[str, torch.Tensor] = {}  # per camera, the patches the last `encode` recomputed

    @property
    def num_patches(self) -> int:
        return self.grid * self.grid

    def reset(self) -> None:
        self.cache.clear()

    def _dense(self, pixels: torch.Tensor) -> tuple[torch.Tensor, list[_CameraCache]]:
        """The library's forward on images (n, 3, H, W), recording keys/values per layer and image."""
        keys, values, hidden = [None] * len(self.layers), [None] * len(self.layers), []
        hooks = []
        for i, layer in enumerate(self.layers):
            hooks.append(layer.self_attn.k_proj.register_forward_hook(
                lambda _m, _a, out, i=i: keys.__setitem__(i, out.detach())))
            hooks.append(layer.self_attn.v_proj.register_forward_hook(
                lambda _m, _a, out, i=i: values.__setitem__(i, out.detach())))
        hooks.append(self.layers[-1].register_forward_hook(lambda _m, _a, out: hidden.append(out.detach())))
        try:
            out = self.vision(pixel_values=pixels).last_hidden_state
        finally:
            for h in hooks:
                h.remove()
        entries = [_CameraCache([k[n : n + 1] for k in keys], [v[n : n + 1] for v in values], hidden[0][n : n + 1])
                   for n in range(pixels.shape[0])]
        return out, entries

    def _partial(self, pixels: torch.Tensor, entry: _CameraCache, idx: torch.Tensor) -> torch.Tensor:
        """Re-encode patches `idx` of one image against the cached context; updates the cache."""
        mask = torch.ones((1, self.grid, self.grid), dtype=torch.bool, device=pixels.device)
        x = self.vision.embeddings(pixel_values=pixels, patch_attention_mask=mask)[:, idx]
        for i, layer in enumerate(self.layers):
            attn = layer.self_attn
            h = layer.layer_norm1(x)
            q, k, v = attn.q_proj(h), attn.k_proj(h), attn.v_proj(h)
            keys, values = entry.keys[i].clone(), entry.values[i].clone()
            keys[:, idx], values[:, idx] = k, v
            entry.keys[i], entry.values[i] = keys, values
            heads = attn.num_heads

            def split(t: torch.Tensor, heads: int = heads) -> torch.Tensor:
                return t.view(1, t.shape[1], heads, -1).transpose(1, 2)

            o = F.scaled_dot_product_attention(split(q), split(keys), split(values), scale=attn.scale)
            x = x + attn.out_proj(o.transpose(1, 2).reshape(1, len(idx), -1))
            x = x + layer.mlp(layer.layer_norm2(x))
        hidden = entry.hidden.clone()
        hidden[:, idx] = x
        entry.hidden = hidden
        return self.vision.post_layernorm(hidden)

    @torch.no_grad()
    def encode(self, pixels: torch.Tensor | None, cameras: list[str], changed: dict[str, torch.Tensor] | None = None
               ) -> tuple[torch.Tensor, dict[str, int]]:
        """Image features (N_cameras, tokens, d) for the language model, for a batch of one.

        pixels: (1, N_cameras, 3, H, W), normalized as the model expects; None is accepted when no
        patch is to be recomputed (every camera cached and nothing changed). changed: per camera a
        (grid, grid) bool mask of patches to recompute; None or an all-true mask means all. A
        camera seen for the first time is always encoded densely.
        """
        device = self.vision.post_layernorm.weight.device
        masks = {cam: None if changed is None else changed[cam].reshape(-1).to(device) for cam in cameras}
        dense = [c for c, cam in enumerate(cameras)
                 if cam not in self.cache or masks[cam] is None or bool(masks[cam].all())]
        if pixels is None and (dense or any(bool(masks[cam].any()) for cam in cameras)):
            raise ValueError("pixels=None, but patches are to be encoded: "
                             f"{[cam for cam in cameras if cam not in self.cache or masks[cam].any()]}")
        outs: list[torch.Tensor | None] = [None] * len(cameras)
        recomputed = self.num_patches * len(dense)
        self.encoded = {cam: masks[cam] if masks[cam] is not None else torch.ones(self.num_patches, dtype=torch.bool)
                        for cam in cameras}
        if dense:  # one batched call, exactly as the dense path encodes them
            out, entries = self._dense(pixels[0, dense])
            for n, c in enumerate(dense):
                outs[c], self.cache[cameras[c]] = out[n : n + 1], entries[n]
                self.encoded[cameras[c]] = torch.ones(self.num_patches, dtype=torch.bool)
        for c, cam in enumerate(cameras):
            if outs[c] is not None:
                continue
            entry, mask = self.cache[cam], masks[cam]
            if not bool(mask.any()):
                outs[c] = self.vision.post_layernorm(entry.hidden)
            else:
                idx = torch.nonzero(mask).flatten()
                outs[c] = self._partial(pixels[:, c], entry, idx)
                recomputed += len(idx)
        features = self.connector(torch.cat(outs, 0))
        total = self.num_patches * len(cameras)
        return features, {"patches_recomputed": recomputed, "patches_reused": total - recomputed}
