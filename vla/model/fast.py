"""The inference path for the onboard GPU: half precision, static shapes, compiled steps, a
preallocated KV cache, pinned uploads, one host synchronisation per control step.

`FastVLA` wraps a trained `VLAModel` for inference only:

- dtype: bf16 on CUDA (fp16 where the card lacks bf16), fp32 on CPU unless asked. Action and
  state bins are computed in fp32 on the device.
- static shapes: the sequence layout is fixed by the config (padded instruction, fixed cameras),
  image positions are a precomputed index, and the vision embeddings use the full-frame patch
  positions directly, so the whole step is one graph without data-dependent indexing.
- compiled: `torch.compile` of the parallel step and of the one-token autoregressive step
  (`mode="reduce-overhead"` on CUDA, which captures CUDA graphs); `compile=False` runs eager.
- KV cache: a `transformers.StaticCache` allocated once for prefix + K x D action tokens and
  reused (reset, not reallocated) at every call.
- uploads: camera frames go up as uint8 from pinned host memory (4x fewer bytes than float)
  through the one way in (`vla.model.inputs`) and are normalized on the device by the model's
  one normalization; the chunk comes back in one copy at the end.
- one decoding loop: `StaticEngine` is an engine of `VLAModel.decode`, like the eager one.

SmolVLM / Idefics3 backbones take this path; other families fall back to the eager
`VLAModel.predict` under autocast (said in `FastVLA.path`). CPU is a supported target: the tests compare the
compiled and eager paths there.
"""

from __future__ import annotations

from typing import Any

import numpy as np
import torch
from transformers import StaticCache

from vla.model.inputs import Batch, observation_batch, pinned_frames
from vla.model.vla import VLAModel
from vla.types import Observation


def inference_dtype(device: torch.device, requested: str | None = None) -> torch.dtype:
    """bf16 on CUDA when the card has it, fp16 otherwise; fp32 on CPU unless `requested`."""
    if requested:
        table = {"fp32": torch.float32, "bf16": torch.bfloat16, "fp16": torch.float16}
        if requested not in table:
            raise ValueError(f"dtype={requested!r}; expected one of {sorted(table)}")
        return table[requested]
    if device.type == "cuda":
        return torch.bfloat16 if torch.cuda.is_bf16_supported() else torch.float16
    return torch.float32


class FastVLA:
    """A trained `VLAModel` on the inference device in half precision, decoding through the
    static, compiled engine where the family allows it (`path` says which)."""

    def __init__(self, model: VLAModel, device: str | torch.device | None = None, dtype: str | None = None,
                 compile: bool = True):
        self.device = torch.device(device or ("cuda" if torch.cuda.is_available() else "cpu"))
        self.dtype = inference_dtype(self.device, dtype)
        self.model = model.eval().to(self.device)  # takes the model over: its weights change dtype in place
        rotary = {name: buf.clone() for name, buf in self.model.hf.named_buffers() if "inv_freq" in name}
        self.model.hf.to(self.dtype)
        if self.model.action_head is not None:
            self.model.action_head.to(self.dtype)
        for name, buf in rotary.items():  # rotary frequencies stay fp32: rounding them skews every angle
            module, attr = self.model.hf.get_submodule(name.rsplit(".", 1)[0]), name.rsplit(".", 1)[1]
            setattr(module, attr, buf)
        self.config = model.config
        self.path = "static" if self.config.family in ("smolvlm", "idefics3") else "eager (unsupported family)"
        self.pinned = pinned_frames(len(self.config.cameras), model.vision_size, self.device)
        self.compiled = bool(compile) and self.path == "static"
        self.engine = StaticEngine(model, self.dtype, compile) if self.path == "static" else None

    def inputs(self, obs: Observation) -> Batch:
        """The one way in, uploading from this path's pinned buffer."""
        return observation_batch(obs, self.config, self.model.vision_size, self.device, self.pinned)

    @torch.no_grad()
    def predict(self, batch: Batch, decoding: str | None = None) -> np.ndarray:
        """(K, D) absolute joint targets for a batch of one."""
        if self.engine is None:
            with torch.autocast(self.device.type, dtype=self.dtype, enabled=self.dtype != torch.float32):
                return self.model.predict(batch, decoding)[0].float().cpu().numpy()
        bins = self.model.decode(batch, decoding, engine=self.engine.bind(batch.images))
        return self.model.values_from_codes(bins, batch.state)[0].cpu().numpy()  # the one host sync of the step

    def describe(self) -> dict[str, Any]:
        return {"device": str(self.device), "dtype": str(self.dtype).replace("torch.", ""), "path": self.path,
                "compiled": self.compiled}


class StaticEngine:
    """`VLAModel.decode`'s engine for SmolVLM / Idefics3 on a fixed layout: the vision tower reads
    full frames with their patch positions directly, image features land at a precomputed index,
    the KV cache is a `StaticCache` allocated once, and the parallel pass and the one-token step
    are compiled (CUDA graphs on CUDA)."""

    def __init__(self, model: VLAModel, dtype: torch.dtype, compile: bool = True):
        cfg, device = model.config, model.device
        self.model, self.dtype = model, dtype
        core = model.hf.model
        self.vision, self.connector, self.text_model = core.vision_model, core.connector, core.text_model
        head = model.head_ids(len(cfg.cameras))
        self.image_positions = (head[0] == model.layout.image_token_id).nonzero().flatten()
        prefix = head.shape[1] + cfg.max_text_tokens + cfg.state_dim  # image blocks, instruction, state
        self.max_length = prefix + cfg.num_action_tokens
        self.positions = torch.arange(self.max_length, device=device)[None]
        self.kv = StaticCache(config=core.config.text_config, max_cache_len=self.max_length)
        mode = "reduce-overhead" if device.type == "cuda" else None
        self._parallel = torch.compile(self._parallel_step, mode=mode, dynamic=False) if compile \
            else self._parallel_step
        self._decode = torch.compile(self._decode_step, mode=mode, dynamic=False) if compile else self._decode_step

    def bind(self, images: torch.Tensor) -> StaticEngine:
        """The frames of this call: (1, N, 3, S, S) uint8 or [0, 1], on the device."""
        self.images = images
        return self

    def _embed(self, seq: torch.Tensor, images: torch.Tensor) -> torch.Tensor:
        pixels = self.model.pixel_values(images, self.dtype).flatten(0, 1)
        emb = self.vision.embeddings
        x = emb.patch_embedding(pixels).flatten(2).transpose(1, 2) + emb.position_embedding.weight[None]
        x = self.vision.encoder(inputs_embeds=x).last_hidden_state
        features = self.connector(self.vision.post_layernorm(x))  # (N, T, d)
        return self.model.embed(seq, features, self.image_positions)

    def _parallel_step(self, seq: torch.Tensor, mask: torch.Tensor, images: torch.Tensor) -> torch.Tensor:
        N = self.model.config.num_action_tokens
        h = self.text_model(inputs_embeds=self._embed(seq, images), attention_mask=mask,
                            position_ids=self.positions, use_cache=False).last_hidden_state
        return self.model.read_actions(h[:, -N:])

    def _decode_step(self, token: torch.Tensor, mask: torch.Tensor, position: torch.Tensor) -> torch.Tensor:
        emb = self.text_model.get_input_embeddings()(token + self.model.first_value_id)
        h = self.text_model(inputs_embeds=emb, attention_mask=mask, position_ids=position,
                            past_key_values=self.kv, use_cache=True).last_hidden_state
        return self.model.read_actions(h)

    def prefill(self, seq: torch.Tensor, mask: torch.Tensor, n_out: int, cache: bool) -> torch.Tensor:
        if not cache:
            return self._parallel(seq, mask, self.images)
        self.kv.reset()
        P = seq.shape[1]
        pad = torch.ones((1, self.max_length - P), dtype=mask.dtype, device=mask.device)
        self.mask, self.position = torch.cat([mask, pad], 1), P  # the static cache's full-length mask
        h = self.text_model(inputs_embeds=self._embed(seq, self.images), attention_mask=self.mask,
                            position_ids=self.positions[:, :P], past_key_values=self.kv,
                            use_cache=True).last_hidden_state
        return self.model.read_actions(h[:, -n_out:])

    def step(self, token: torch.Tensor) -> torch.Tensor:
        p = self.position
        self.position += 1
        # clone: a CUDA-graph replay overwrites its output buffer at the next call
        return self._decode(token, self.mask, self.positions[:, p : p + 1]).clone()
