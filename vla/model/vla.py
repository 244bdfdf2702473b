"""The VLA: a VLM backbone whose language head emits action tokens.

Sequence (static length for a given config):

    [image block per camera] [instruction, padded to max_text_tokens] [state as value tokens]
    [K x D action positions]

Parallel decoding (OpenVLA-OFT style) fills the action positions with query tokens <q_d>
(one per action dimension) and reads every action from one forward pass. Autoregressive
decoding (RT-2/OpenVLA) feeds the action tokens back one by one with a KV cache. Training
teaches both: half of each batch in each layout, in a single forward pass. At action
positions the head is restricted to the value tokens, and the loss is only there.

The proprioceptive state enters as discretized value tokens (the same 256 bins as actions,
normalized with the state's own 1st/99th percentiles): no extra module, so any supported
backbone takes it unchanged, and 1/256 of a joint's range is finer than the arm repeats.
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import torch
import torch.nn.functional as F
from torch import nn

from vla.model.action_tokenizer import ActionTokenizer
from vla.model.backbone import Layout, add_vla_tokens, image_stats, layout_for, load_local_backbone, tiny_backbone
from vla.model.config import VLAConfig

WEIGHTS = "model.safetensors"
CONFIG = "config.json"
TOKENIZERS = "action_tokenizer.json"


def trains_decoding(parallel_fraction: float, decoding: str) -> bool:
    """Whether training with this share of parallel samples teaches `decoding` at all."""
    return {"parallel": parallel_fraction > 0.0, "autoregressive": parallel_fraction < 1.0}[decoding]


class CheckpointError(ValueError):
    """A checkpoint folder is incomplete or does not match the model it is loaded into."""


@dataclass
class Batch:
    """Model inputs on one device. images: (B, N, 3, H, W) float in [0, 1]; state: (B, S)."""

    images: torch.Tensor
    tasks: list[str]
    state: torch.Tensor
    actions: torch.Tensor | None = None  # (B, K, D) absolute targets, for training


class VLAModel(nn.Module):
    def __init__(self, config: VLAConfig, backbone: nn.Module, tokenizer, action_tok: ActionTokenizer,
                 state_tok: ActionTokenizer):
        super().__init__()
        self.config = config
        self.backbone = backbone
        self.tokenizer = tokenizer
        self.action_tok = action_tok
        self.state_tok = state_tok
        self.first_value_id, self.query_ids = add_vla_tokens(tokenizer, config.bins, config.action_dim)
        if action_tok.first_id != self.first_value_id or state_tok.first_id != self.first_value_id:
            raise CheckpointError("action/state tokenizers do not point at the tokenizer's value tokens")
        if backbone.get_input_embeddings().num_embeddings < len(tokenizer):
            backbone.resize_token_embeddings(len(tokenizer), mean_resizing=False)
        self.layout: Layout = layout_for(config.family, backbone, tokenizer)
        mean, std = image_stats(config.backbone_path)
        self.register_buffer("img_mean", torch.tensor(mean).view(1, 1, 3, 1, 1), persistent=False)
        self.register_buffer("img_std", torch.tensor(std).view(1, 1, 3, 1, 1), persistent=False)
        for name, tok in (("action", action_tok), ("state", state_tok)):
            self.register_buffer(f"{name}_low", torch.tensor(tok.low, dtype=torch.float32), persistent=False)
            self.register_buffer(f"{name}_high", torch.tensor(tok.high, dtype=torch.float32), persistent=False)
        self.vision_size = backbone.config.vision_config.image_size

    # --- helpers ---------------------------------------------------------------------------------
    @property
    def device(self) -> torch.device:
        return self.img_mean.device

    def _bins(self, x: torch.Tensor, low: torch.Tensor, high: torch.Tensor) -> torch.Tensor:
        """Torch twin of ActionTokenizer.to_bins (tested equal)."""
        n = (2.0 * (x - low) / (high - low) - 1.0).clamp(-1.0, 1.0)
        return torch.clamp(torch.floor((n + 1.0) / 2.0 * self.config.bins), max=self.config.bins - 1).long()

    def _values(self, bins: torch.Tensor) -> torch.Tensor:
        n = (bins.float() + 0.5) / self.config.bins * 2.0 - 1.0
        return self.action_low + (n + 1.0) / 2.0 * (self.action_high - self.action_low)

    def _pixels(self, images: torch.Tensor) -> torch.Tensor:
        B, N, C, H, W = images.shape
        if (H, W) != (self.vision_size, self.vision_size):  # documented automatic resize
            S = self.vision_size
            images = F.interpolate(images.flatten(0, 1), size=(S, S), mode="bilinear", antialias=True,
                                   align_corners=False).view(B, N, C, S, S)
        return self.layout.pixel_values((images - self.img_mean) / self.img_std)

    def _text(self, tasks: list[str]) -> tuple[torch.Tensor, torch.Tensor]:
        """Instructions padded (right) to max_text_tokens: (B, T) ids and mask."""
        T = self.config.max_text_tokens
        enc = self.tokenizer(tasks, add_special_tokens=False, padding="max_length", truncation=True, max_length=T,
                             return_tensors="pt")
        return enc["input_ids"].to(self.device), enc["attention_mask"].to(self.device)

    def prefix(self, batch: Batch) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
        """input_ids (B, P), attention_mask (B, P), pixel_values for images + instruction + state."""
        B, N = batch.images.shape[:2]
        head_ids = self.head_ids(N).expand(B, -1)
        text_ids, text_mask = self._text(batch.tasks)
        state_ids = self.state_ids(batch.state)
        ids = torch.cat([head_ids, text_ids, state_ids], dim=1)
        mask = torch.cat([torch.ones_like(head_ids), text_mask, torch.ones_like(state_ids)], dim=1)
        return ids, mask, self._pixels(batch.images)

    def head_ids(self, cameras: int) -> torch.Tensor:
        """(1, H) ids of the image blocks (and BOS where the family has one) that open every sequence."""
        head = [t for _ in range(cameras) for t in self.layout.image_block()]
        if self.layout.bos_id is not None:
            head.append(self.layout.bos_id)
        return torch.tensor(head, device=self.device)[None]

    def state_ids(self, state: torch.Tensor) -> torch.Tensor:
        """(B, S) joint states -> their value tokens."""
        return self._bins(state, self.state_low, self.state_high) + self.first_value_id

    def _queries(self, B: int) -> torch.Tensor:
        q = torch.tensor(self.query_ids, device=self.device)
        return q.repeat(self.config.chunk_size).expand(B, -1)  # (B, K*D), k-major like the targets

    @property
    def hf(self) -> nn.Module:
        """The Hugging Face model, also when peft wraps it for LoRA."""
        return self.backbone.get_base_model() if hasattr(self.backbone, "get_base_model") else self.backbone

    def _hidden(self, ids, mask, pixels=None, **kw):
        return self.hf.model(input_ids=ids, attention_mask=mask, pixel_values=pixels,
                                   **self.layout.extra_inputs(ids), **kw)

    def _action_logits(self, hidden: torch.Tensor) -> torch.Tensor:
        """Logits over the value tokens only: at action positions nothing else can be produced."""
        head = self.hf.get_output_embeddings()
        weight = head.weight[self.first_value_id : self.first_value_id + self.config.bins]
        bias = None if head.bias is None else head.bias[self.first_value_id : self.first_value_id + self.config.bins]
        return F.linear(hidden, weight, bias)

    def targets(self, batch: Batch) -> torch.Tensor:
        """(B, K*D) target bins of the action chunk."""
        actions = batch.actions
        if self.config.action_reference == "state":
            actions = actions - batch.state[:, None, :]
        return self._bins(actions, self.action_low, self.action_high).flatten(1)

    # --- training --------------------------------------------------------------------------------
    def forward(self, batch: Batch, parallel_fraction: float = 0.5,
                label_sigma: float = 0.0) -> tuple[torch.Tensor, dict[str, float]]:
        """Cross-entropy on action tokens only.

        `parallel_fraction` of the samples (spread evenly; every other one at 0.5) train parallel
        decoding, the rest autoregressive decoding, teacher-forced, so one checkpoint serves both.
        `label_sigma` > 0 replaces each one-hot target with a Gaussian over neighbouring bins (that
        many bins wide): a near miss then costs less than a far one."""
        if not 0.0 <= parallel_fraction <= 1.0:
            raise ValueError(f"parallel_fraction={parallel_fraction}; expected 0..1")
        ids, mask, pixels = self.prefix(batch)
        B, P = ids.shape
        target = self.targets(batch)  # (B, N)
        N = target.shape[1]
        i = torch.arange(B, device=self.device)
        parallel = (torch.ceil((i + 1) * parallel_fraction) > torch.ceil(i * parallel_fraction))[:, None]
        tail = torch.where(parallel, self._queries(B), target + self.first_value_id)
        out = self._hidden(torch.cat([ids, tail], 1), torch.cat([mask, torch.ones_like(tail)], 1), pixels)
        h = out.last_hidden_state
        # Parallel: the query at position P + j predicts action token j. Autoregressive: the
        # position before token j (P - 1 + j) predicts it, teacher-forced.
        h = torch.where(parallel[..., None], h[:, P : P + N], h[:, P - 1 : P - 1 + N])
        logits = self._action_logits(h).float()  # (B, N, bins)
        loss = action_loss(logits, target, label_sigma)
        with torch.no_grad():
            acc = (logits.argmax(-1) == target).float()
            nan = float("nan")
            metrics = {"loss": loss.item(),
                       "acc_parallel": acc[parallel[:, 0]].mean().item() if parallel.any() else nan,
                       "acc_autoregressive": acc[~parallel[:, 0]].mean().item() if not parallel.all() else nan}
        return loss, metrics

    # --- inference -------------------------------------------------------------------------------
    @torch.no_grad()
    def predict_bins(self, batch: Batch, decoding: str | None = None,
                     image_features: torch.Tensor | None = None) -> torch.Tensor:
        """(B, K*D) action bins, decoded in parallel or autoregressively (greedy).

        `image_features`: the connector's output for these images, computed elsewhere (the
        event-sparse encoder); the vision tower is then skipped."""
        decoding = decoding or self.config.decoding
        ids, mask, pixels = self.prefix(batch)
        vision = {"pixels": pixels} if image_features is None else {"image_hidden_states": image_features}
        B, P = ids.shape
        N = self.config.num_action_tokens
        if decoding == "parallel":
            tail = self._queries(B)
            h = self._hidden(torch.cat([ids, tail], 1), torch.cat([mask, torch.ones_like(tail)], 1), use_cache=False,
                             **vision)
            return self._action_logits(h.last_hidden_state[:, P:]).argmax(-1)
        if decoding != "autoregressive":
            raise ValueError(f"decoding={decoding!r}; expected 'parallel' or 'autoregressive'")
        out = self._hidden(ids, mask, use_cache=True, **vision)
        cache, h = out.past_key_values, out.last_hidden_state[:, -1:]
        tokens = []
        for j in range(N):
            token = self._action_logits(h).argmax(-1)  # (B, 1)
            tokens.append(token)
            if j == N - 1:
                break
            mask = torch.cat([mask, torch.ones_like(token)], 1)
            out = self._hidden(token + self.first_value_id, mask, past_key_values=cache, use_cache=True)
            cache, h = out.past_key_values, out.last_hidden_state
        return torch.cat(tokens, 1)

    @torch.no_grad()
    def predict(self, batch: Batch, decoding: str | None = None,
                image_features: torch.Tensor | None = None) -> torch.Tensor:
        """(B, K, D) absolute joint targets."""
        return self.values_from_bins(self.predict_bins(batch, decoding, image_features), batch.state)

    def values_from_bins(self, bins: torch.Tensor, state: torch.Tensor) -> torch.Tensor:
        """(B, K*D) action bins -> (B, K, D) absolute joint targets."""
        cfg = self.config
        actions = self._values(bins.view(-1, cfg.chunk_size, cfg.action_dim))
        if cfg.action_reference == "state":
            actions = actions + state[:, None, :]
        return actions

    # --- checkpoints -----------------------------------------------------------------------------
    def save_pretrained(self, path: str | Path) -> Path:
        """One folder: safetensors weights, JSON configs, tokenizer, action/state tokenizers."""
        from safetensors.torch import save_model

        path = Path(path)
        path.mkdir(parents=True, exist_ok=True)
        save_model(self.backbone, str(path / WEIGHTS))
        config = {"vla": self.config.to_dict(), "backbone": self.backbone.config.to_dict()}
        (path / CONFIG).write_text(json.dumps(config, indent=2))
        self.tokenizer.save_pretrained(path)
        toks = {"action": self.action_tok.to_dict(), "state": self.state_tok.to_dict()}
        (path / TOKENIZERS).write_text(json.dumps(toks, indent=2))
        return path

    @classmethod
    def from_pretrained(cls, path: str | Path, device: str | torch.device = "cpu") -> VLAModel:
        """Restore a saved policy exactly. Reads JSON and safetensors only: nothing is unpickled."""
        from safetensors.torch import load_file
        from transformers import AutoConfig, AutoModelForImageTextToText, PreTrainedTokenizerFast

        path = Path(path)
        missing = [f for f in (WEIGHTS, CONFIG, TOKENIZERS, "tokenizer.json") if not (path / f).is_file()]
        if missing:
            raise CheckpointError(f"{path} is not a VLA checkpoint: missing {missing}")
        saved = json.loads((path / CONFIG).read_text())
        config = VLAConfig.from_dict(saved["vla"])
        backbone_cfg = dict(saved["backbone"])
        hf_config = AutoConfig.for_model(backbone_cfg.pop("model_type"), **backbone_cfg)
        backbone = AutoModelForImageTextToText.from_config(hf_config)
        tokenizer = PreTrainedTokenizerFast.from_pretrained(path)
        toks = json.loads((path / TOKENIZERS).read_text())
        model = cls(config, backbone, tokenizer, ActionTokenizer.from_dict(toks["action"]),
                    ActionTokenizer.from_dict(toks["state"]))
        load_weights(model.backbone, load_file(str(path / WEIGHTS)), str(path / WEIGHTS))
        return model.to(device).eval()


def action_loss(logits: torch.Tensor, target: torch.Tensor, label_sigma: float = 0.0) -> torch.Tensor:
    """Mean cross-entropy of (..., bins) logits against (...) target bins; with `label_sigma` > 0
    the target is a Gaussian over the bins centred on the true one (that many bins wide)."""
    if label_sigma <= 0:
        return F.cross_entropy(logits.flatten(0, -2), target.flatten())
    bins = torch.arange(logits.shape[-1], device=logits.device, dtype=torch.float32)
    soft = torch.softmax(-0.5 * ((bins - target[..., None]) / label_sigma) ** 2, dim=-1)
    return -(soft * F.log_softmax(logits, dim=-1)).sum(-1).mean()


def load_weights(module: nn.Module, state: dict[str, torch.Tensor], where: str) -> None:
    """Load a state dict after checking names and shapes, saying exactly which differ."""
    own = module.state_dict()
    # save_model keeps one name of tensors that share storage (tied embeddings); the others
    # come back through the tie.
    sharing: dict[int, list[str]] = {}
    for k, v in own.items():
        sharing.setdefault(v.data_ptr(), []).append(k)
    missing = [k for k in own if k not in state and not any(o in state for o in sharing[own[k].data_ptr()])]
    unexpected = [k for k in state if k not in own]
    shapes = [f"{k}: checkpoint {tuple(state[k].shape)} vs model {tuple(own[k].shape)}"
              for k in state if k in own and state[k].shape != own[k].shape]
    if missing or unexpected or shapes:
        raise CheckpointError(
            f"{where} does not match this model: missing {missing[:5]}, unexpected {unexpected[:5]}, "
            f"shape mismatches {shapes[:5]}"
        )
    module.load_state_dict(state, strict=False)


def new_model(config: VLAConfig, texts: list[str], action_low: np.ndarray, action_high: np.ndarray,
              state_low: np.ndarray, state_high: np.ndarray) -> VLAModel:
    """A fresh VLA: the tiny backbone built from `config` (tokenizer trained on `texts`), or a local checkpoint."""
    from vla.model.backbone import build_text_tokenizer

    if config.backbone_path:
        backbone, tokenizer = load_local_backbone(config.backbone_path)
    else:
        tokenizer = build_text_tokenizer(texts)
    first, _ = add_vla_tokens(tokenizer, config.bins, config.action_dim)  # before the tiny model sizes its vocab
    if not config.backbone_path:
        backbone = tiny_backbone(config, tokenizer)
    return VLAModel(config, backbone, tokenizer, ActionTokenizer(action_low, action_high, config.bins, first),
                    ActionTokenizer(state_low, state_high, config.bins, first))
