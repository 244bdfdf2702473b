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
  and are normalized on the device; the chunk comes back in one copy at the end.

SmolVLM / Idefics3 backbones take this path; other families fall back to the eager
`VLAModel.predict` (said in `FastVLA.path`). CPU is a supported target: the tests compare the
compiled and eager paths there.
"""

from __future__ import annotations

from typing import Any

import numpy as np
import torch

from vla.model.vla import VLAModel


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
    def __init__(self, model: VLAModel, device: str | torch.device | None = None, dtype: str | None = None,
                 compile: bool = True):
        self.device = torch.device(device or ("cuda" if torch.cuda.is_available() else "cpu"))
        self.dtype = inference_dtype(self.device, dtype)
        self.model = model.eval().to(self.device)  # takes the model over: its weights change dtype in place
        rotary = {name: buf.clone() for name, buf in self.model.hf.named_buffers() if "inv_freq" in name}
        self.model.hf.to(self.dtype)
        for name, buf in rotary.items():  # rotary frequencies stay fp32: rounding them skews every angle
            module, attr = self.model.hf.get_submodule(name.rsplit(".", 1)[0]), name.rsplit(".", 1)[1]
            setattr(module, attr, buf)
        cfg = model.config
        self.config = cfg
        self.path = "static" if cfg.family in ("smolvlm", "idefics3") else "eager (unsupported family)"
        self._text_cache: dict[str, tuple[torch.Tensor, torch.Tensor]] = {}
        n_cams = len(cfg.cameras)
        size = model.vision_size
        self._pinned = torch.empty((1, n_cams, size, size, 3), dtype=torch.uint8,
                                   pin_memory=self.device.type == "cuda")
        self.compiled = bool(compile)
        if self.path == "static":
            core = model.hf.model
            self.vision, self.connector, self.text_model = core.vision_model, core.connector, core.text_model
            ids, _ = self._ids("x")
            self.image_positions = (ids[0] == model.layout.image_token_id).nonzero().flatten()
            self.prefix_length = ids.shape[1] + cfg.state_dim  # image blocks, instruction, state
            self.max_length = self.prefix_length + cfg.num_action_tokens
            self.queries = torch.tensor(model.query_ids, device=self.device).repeat(cfg.chunk_size)[None]
            self.positions = torch.arange(self.max_length, device=self.device)[None]
            from transformers import StaticCache

            self.kv = StaticCache(config=core.config.text_config, max_cache_len=self.max_length)
            mode = "reduce-overhead" if self.device.type == "cuda" else None
            self._parallel = torch.compile(self._parallel_step, mode=mode, dynamic=False) if compile \
                else self._parallel_step
            self._decode = torch.compile(self._decode_step, mode=mode, dynamic=False) if compile \
                else self._decode_step

    # --- inputs ------------------------------------------------------------------------------------
    def _ids(self, task: str) -> tuple[torch.Tensor, torch.Tensor]:
        """Prefix ids without the state (image block, bos, instruction) and its mask; cached per instruction."""
        hit = self._text_cache.get(task)
        if hit is None:
            head_t = self.model.head_ids(len(self.config.cameras))
            text, text_mask = self.model._text([task])
            hit = (torch.cat([head_t, text], 1), torch.cat([torch.ones_like(head_t), text_mask], 1))
            if len(self._text_cache) < 256:
                self._text_cache[task] = hit
        return hit

    def upload(self, frames: list[np.ndarray]) -> torch.Tensor:
        """Camera frames (H, W, 3) uint8 at the tower's size -> (1, N, H, W, 3) uint8 on the device."""
        for i, f in enumerate(frames):
            self._pinned[0, i].copy_(torch.from_numpy(f))
        return self._pinned.to(self.device, non_blocking=True)

    # --- the compiled steps --------------------------------------------------------------------------
    def _embed(self, ids: torch.Tensor, frames_u8: torch.Tensor) -> torch.Tensor:
        m = self.model
        pixels = frames_u8.permute(0, 1, 4, 2, 3).flatten(0, 1).to(self.dtype).div(255)
        pixels = (pixels - m.img_mean[0].to(self.dtype)) / m.img_std[0].to(self.dtype)
        emb = self.vision.embeddings
        x = emb.patch_embedding(pixels).flatten(2).transpose(1, 2) + emb.position_embedding.weight[None]
        x = self.vision.encoder(inputs_embeds=x).last_hidden_state
        features = self.connector(self.vision.post_layernorm(x))  # (N, T, d)
        tokens = self.text_model.get_input_embeddings()(ids)
        return tokens.index_copy(1, self.image_positions, features.reshape(1, -1, features.shape[-1]))

    def _parallel_step(self, ids: torch.Tensor, mask: torch.Tensor, frames_u8: torch.Tensor) -> torch.Tensor:
        seq = torch.cat([ids, self.queries], 1)
        full_mask = torch.cat([mask, torch.ones_like(self.queries)], 1)
        h = self.text_model(inputs_embeds=self._embed(seq, frames_u8), attention_mask=full_mask,
                            position_ids=self.positions, use_cache=False).last_hidden_state
        return self.model._action_logits(h[:, ids.shape[1]:]).argmax(-1)

    def _decode_step(self, token: torch.Tensor, mask: torch.Tensor, position: torch.Tensor) -> torch.Tensor:
        emb = self.text_model.get_input_embeddings()(token + self.model.first_value_id)
        h = self.text_model(inputs_embeds=emb, attention_mask=mask, position_ids=position,
                            past_key_values=self.kv, use_cache=True).last_hidden_state
        return self.model._action_logits(h).argmax(-1)

    def _autoregressive(self, ids: torch.Tensor, mask: torch.Tensor, frames_u8: torch.Tensor) -> torch.Tensor:
        self.kv.reset()
        P, N = ids.shape[1], self.config.num_action_tokens
        full_mask = torch.cat([mask, torch.ones((1, N), dtype=mask.dtype, device=self.device)], 1)
        h = self.text_model(inputs_embeds=self._embed(ids, frames_u8), attention_mask=full_mask,
                            position_ids=self.positions[:, :P], past_key_values=self.kv,
                            use_cache=True).last_hidden_state
        token = self.model._action_logits(h[:, -1:]).argmax(-1)
        tokens = [token]
        for j in range(1, N):
            # clone: a CUDA-graph replay overwrites its output buffer at the next call
            token = self._decode(token, full_mask, self.positions[:, P + j - 1 : P + j]).clone()
            tokens.append(token)
        return torch.cat(tokens, 1)

    # --- the policy-facing call ----------------------------------------------------------------------
    @torch.no_grad()
    def predict(self, frames: list[np.ndarray], task: str, state: np.ndarray, decoding: str | None = None
                ) -> np.ndarray:
        """(K, D) absolute joint targets from uint8 frames (tower size), an instruction and the state."""
        m, cfg = self.model, self.config
        decoding = decoding or cfg.decoding
        state_t = torch.from_numpy(np.asarray(state, dtype=np.float32))[None].to(self.device, non_blocking=True)
        if self.path != "static":
            from vla.model.vla import Batch

            images = torch.stack([torch.from_numpy(f).permute(2, 0, 1) for f in frames])[None]
            batch = Batch(images.to(self.device).float().div(255), [task], state_t)
            with torch.autocast(self.device.type, dtype=self.dtype, enabled=self.dtype != torch.float32):
                return m.predict(batch, decoding)[0].float().cpu().numpy()
        frames_u8 = self.upload(frames)
        prefix, prefix_mask = self._ids(task)
        state_ids = m.state_ids(state_t)
        ids = torch.cat([prefix, state_ids], 1)
        mask = torch.cat([prefix_mask, torch.ones_like(state_ids)], 1)
        if decoding == "parallel":
            bins = self._parallel(ids, mask, frames_u8)
        elif decoding == "autoregressive":
            bins = self._autoregressive(ids, mask, frames_u8)
        else:
            raise ValueError(f"decoding={decoding!r}; expected 'parallel' or 'autoregressive'")
        return m.values_from_bins(bins, state_t)[0].cpu().numpy()  # the one host synchronisation of the step

    def describe(self) -> dict[str, Any]:
        return {"device": str(self.device), "dtype": str(self.dtype).replace("torch.", ""), "path": self.path,
                "compiled": self.compiled}
