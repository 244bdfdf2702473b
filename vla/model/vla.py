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

The inference core is public and used by every path (the static GPU path, token pruning, the
event-sparse policy, the planner, the benchmarks): `prefix` (ids and mask), `pixel_values` (the
one normalization), `language` (the backbone), `embed` (tokens with image features merged),
`action_logits`, and `decode`, the one decoding loop, which takes the mode plus optional cached
image features, kept image tokens and an engine (`vla.model.engines`). Inputs come from
`vla.model.inputs`, the one way in.
"""

from __future__ import annotations

import json
import logging
from pathlib import Path

import numpy as np
import torch
import torch.nn.functional as F
from safetensors.torch import load_file, save_model
from torch import nn
from transformers import AutoConfig, AutoModelForImageTextToText, PreTrainedTokenizerFast

from vla.model.action_tokenizer import ActionTokenizer
from vla.model.backbone import (
    Layout,
    add_vla_tokens,
    build_text_tokenizer,
    image_stats,
    install_vision_stem,
    layout_for,
    load_local_backbone,
    tiny_backbone,
)
from vla.model.config import VLAConfig
from vla.model.engines import Engine, LibraryEngine, PrunedEngine
from vla.model.inputs import Batch, resize

log = logging.getLogger(__name__)

WEIGHTS = "model.safetensors"
CONFIG = "config.json"
TOKENIZERS = "action_tokenizer.json"
HEAD_WEIGHTS = "action_head.safetensors"  # only for heads other than the language model's own (bins, per_dim)
AUX_WEIGHTS = "aux_head.safetensors"  # training-only grounding head (`aux_targets`)


def trains_decoding(parallel_fraction: float, decoding: str) -> bool:
    """Whether training with this share of parallel samples teaches `decoding` at all."""
    return {"parallel": parallel_fraction > 0.0, "autoregressive": parallel_fraction < 1.0}[decoding]


class CheckpointError(ValueError):
    """A checkpoint folder is incomplete or does not match the model it is loaded into."""


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
        install_vision_stem(backbone, config.vision_stem)  # before any weights are loaded into it
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
        # Dimensions predicted relative to the state (1) or absolute (0): the gripper is absolute in
        # `gripper: physical` mode, so its bins span its range rather than its recent motion.
        relative = torch.full((config.action_dim,), float(config.action_reference == "state"))
        if config.gripper == "physical":
            relative[config.gripper_dim] = 0.0
        self.register_buffer("relative", relative, persistent=False)
        self.action_head = self._new_head(backbone)
        self.aux_head = AuxHead(backbone.config.text_config.hidden_size, config.aux_dim) if config.aux_targets else None
        self._text_cache: dict[str, tuple[torch.Tensor, torch.Tensor]] = {}  # instruction -> (1, T) ids, mask

    def _new_head(self, backbone: nn.Module) -> nn.Linear | None:
        """The read-out of action positions. Bins per value reuse the language model's head over the
        value tokens (what autoregressive decoding feeds back); every other head is a linear map."""
        cfg = self.config
        if cfg.decodes_autoregressively:
            return None
        per_position = cfg.action_dim if cfg.action_tokens == "per_step" else 1
        width = cfg.bins if cfg.action_head == "bins" else 1
        return nn.Linear(backbone.config.text_config.hidden_size, per_position * width)

    @property
    def device(self) -> torch.device:
        return self.img_mean.device

    @property
    def hf(self) -> nn.Module:
        """The Hugging Face model, also when peft wraps it for LoRA."""
        return self.backbone.get_base_model() if hasattr(self.backbone, "get_base_model") else self.backbone

    @property
    def text_model(self) -> nn.Module:
        """The language model alone (SmolVLM / Idefics3), for paths that merge image features themselves."""
        core = self.hf.model
        if not hasattr(core, "text_model"):
            raise ValueError(f"{self.config.family}: this path needs a SmolVLM/Idefics3 backbone (text_model)")
        return core.text_model

    # --- tokens and bins -------------------------------------------------------------------------
    def _bins(self, x: torch.Tensor, low: torch.Tensor, high: torch.Tensor) -> torch.Tensor:
        """Torch twin of ActionTokenizer.to_bins (tested equal)."""
        n = (2.0 * (x - low) / (high - low) - 1.0).clamp(-1.0, 1.0)
        return torch.clamp(torch.floor((n + 1.0) / 2.0 * self.config.bins), max=self.config.bins - 1).long()

    def head_ids(self, cameras: int) -> torch.Tensor:
        """(1, H) ids of the image blocks (and BOS where the family has one) that open every sequence."""
        head = [t for _ in range(cameras) for t in self.layout.image_block()]
        if self.layout.bos_id is not None:
            head.append(self.layout.bos_id)
        return torch.tensor(head, device=self.device)[None]

    def text_ids(self, tasks: list[str]) -> tuple[torch.Tensor, torch.Tensor]:
        """Instructions padded (right) to max_text_tokens: (B, T) ids and mask; tokenized once per instruction."""
        rows = []
        for task in tasks:
            hit = self._text_cache.get(task)
            if hit is None or hit[0].device != self.device:
                if hit is None and (n := len(self.tokenizer(task, add_special_tokens=False)["input_ids"])) \
                        > self.config.max_text_tokens:  # the words past the limit never reach the model: say so
                    log.warning("instruction of %d tokens cut to max_text_tokens=%d: %r", n,
                                self.config.max_text_tokens, task)
                enc = self.tokenizer([task], add_special_tokens=False, padding="max_length", truncation=True,
                                     max_length=self.config.max_text_tokens, return_tensors="pt")
                hit = (enc["input_ids"].to(self.device), enc["attention_mask"].to(self.device))
                if len(self._text_cache) < 4096:
                    self._text_cache[task] = hit
            rows.append(hit)
        if len(rows) == 1:
            return rows[0]
        return torch.cat([r[0] for r in rows]), torch.cat([r[1] for r in rows])

    def state_ids(self, state: torch.Tensor) -> torch.Tensor:
        """(B, S) joint states -> their value tokens."""
        return self._bins(state, self.state_low, self.state_high) + self.first_value_id

    def queries(self, B: int) -> torch.Tensor:
        """(B, positions) query tokens of parallel decoding: <q_d> per value, k-major like the targets,
        or <q_0> at each of the K steps (`per_step`: the position tells the step)."""
        cfg = self.config
        q = torch.tensor(self.query_ids if cfg.action_tokens == "per_dim" else self.query_ids[:1], device=self.device)
        return q.repeat(cfg.chunk_size).expand(B, -1)

    def _reference(self, state: torch.Tensor) -> torch.Tensor:
        """(B, 1, D) what predicted values are relative to: the joint state where relative, else 0."""
        return state[:, None, : self.config.action_dim] * self.relative

    def targets(self, batch: Batch) -> torch.Tensor:
        """(B, K*D) target bins of the action chunk."""
        return self._bins(batch.actions - self._reference(batch.state), self.action_low, self.action_high).flatten(1)

    def normalized_targets(self, batch: Batch) -> torch.Tensor:
        """(B, K*D) targets in [-1, 1] (the continuous head's), clipped as the bins are."""
        x = batch.actions - self._reference(batch.state)
        return (2.0 * (x - self.action_low) / (self.action_high - self.action_low) - 1.0).clamp(-1.0, 1.0).flatten(1)

    def values_from_codes(self, codes: torch.Tensor, state: torch.Tensor) -> torch.Tensor:
        """(B, K*D) decoded codes (bins, or normalized values of the continuous head) -> (B, K, D)
        absolute joint targets."""
        cfg = self.config
        codes = codes.reshape(-1, cfg.chunk_size, cfg.action_dim)
        if codes.is_floating_point():
            n = codes.float().clamp(-1.0, 1.0)
        else:
            n = (codes.float() + 0.5) / cfg.bins * 2.0 - 1.0
        return self.action_low + (n + 1.0) / 2.0 * (self.action_high - self.action_low) + self._reference(state)

    # --- the inference core: prefix, images, backbone, action head -------------------------------
    def prefix(self, batch: Batch) -> tuple[torch.Tensor, torch.Tensor]:
        """input_ids and attention_mask (B, P) of image blocks + instruction + state."""
        B, N = batch.images.shape[:2]
        head_ids = self.head_ids(N).expand(B, -1)
        text_ids, text_mask = self.text_ids(batch.tasks)
        state_ids = self.state_ids(batch.state)
        ids = torch.cat([head_ids, text_ids, state_ids], dim=1)
        mask = torch.cat([torch.ones_like(head_ids), text_mask, torch.ones_like(state_ids)], dim=1)
        return ids, mask

    def pixel_values(self, images: torch.Tensor, dtype: torch.dtype = torch.float32) -> torch.Tensor:
        """(B, N, 3, H, W) uint8 or [0, 1] images -> normalized pixels in the family's shape: the one
        normalization of the stack (a size other than the tower's goes through the one resize)."""
        x = images.to(dtype)
        if images.dtype == torch.uint8:
            x = x / 255
        x = resize(x, self.vision_size)
        return self.layout.pixel_values((x - self.img_mean.to(dtype)) / self.img_std.to(dtype))

    def language(self, ids: torch.Tensor, mask: torch.Tensor, pixels: torch.Tensor | None = None,
                 image_features: torch.Tensor | None = None, **kw):
        """The backbone over `ids`, images merged at their positions by the family's own forward:
        from `pixels`, or from connector outputs `image_features` computed elsewhere (SmolVLM)."""
        vision = {} if image_features is None else {"image_hidden_states": image_features}
        if pixels is not None:
            vision["pixel_values"] = pixels
        return self.hf.model(input_ids=ids, attention_mask=mask, **vision, **self.layout.extra_inputs(ids), **kw)

    def embed(self, ids: torch.Tensor, image_features: torch.Tensor,
              image_positions: torch.Tensor | None = None) -> torch.Tensor:
        """Token embeddings of `ids` with the (n_images, T, d) features at the image positions
        (a fixed index where given, so a compiled graph has no data-dependent indexing)."""
        emb = self.text_model.get_input_embeddings()(ids)
        flat = image_features.reshape(ids.shape[0], -1, image_features.shape[-1]).to(emb.dtype)
        if image_positions is not None:
            return emb.index_copy(1, image_positions, flat)
        emb = emb.clone()
        emb[ids == self.layout.image_token_id] = flat.reshape(-1, flat.shape[-1])
        return emb

    def action_logits(self, hidden: torch.Tensor) -> torch.Tensor:
        """Logits over the value tokens only: at action positions nothing else can be produced."""
        head = self.hf.get_output_embeddings()
        weight = head.weight[self.first_value_id : self.first_value_id + self.config.bins]
        bias = None if head.bias is None else head.bias[self.first_value_id : self.first_value_id + self.config.bins]
        return F.linear(hidden, weight, bias)

    def head_outputs(self, hidden: torch.Tensor) -> torch.Tensor:
        """Hidden states at action positions (B, n, h) -> per action value, k-major: (B, n', bins)
        logits for the bins head or (B, n') normalized values for the continuous head."""
        if self.action_head is None:
            return self.action_logits(hidden)
        B, n = hidden.shape[:2]
        out = self.action_head(hidden)
        return out.view(B, -1, self.config.bins) if self.config.action_head == "bins" else out.view(B, -1)

    def read_actions(self, hidden: torch.Tensor) -> torch.Tensor:
        """Hidden states at action positions -> codes: greedy bins (long) or normalized values (float)."""
        out = self.head_outputs(hidden)
        return out.argmax(-1) if self.config.action_head == "bins" else out

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
        if parallel_fraction < 1.0 and not self.config.decodes_autoregressively:
            raise ValueError(f"parallel_fraction={parallel_fraction}: the {self.config.action_head} head with "
                             f"{self.config.action_tokens} tokens decodes in parallel only; use 1.0")
        ids, mask = self.prefix(batch)
        B, P = ids.shape
        target = self.targets(batch)  # (B, K*D) bins
        N = self.config.num_action_tokens
        i = torch.arange(B, device=self.device)
        parallel = (torch.ceil((i + 1) * parallel_fraction) > torch.ceil(i * parallel_fraction))[:, None]
        tail = self.queries(B) if parallel.all() else torch.where(parallel, self.queries(B),
                                                                    target + self.first_value_id)
        if self.aux_head is not None and batch.aux is not None:  # one position after every action position
            tail = torch.cat([tail, tail.new_full((B, 1), self.query_ids[0])], 1)
        out = self.language(torch.cat([ids, tail], 1), torch.cat([mask, torch.ones_like(tail)], 1),
                            self.pixel_values(batch.images))
        h = out.last_hidden_state
        # Parallel: the query at position P + j reads action position j. Autoregressive: the
        # position before token j (P - 1 + j) predicts it, teacher-forced.
        h = h[:, P : P + N] if parallel.all() else torch.where(parallel[..., None], h[:, P : P + N],
                                                                 h[:, P - 1 : P - 1 + N])
        outputs = self.head_outputs(h).float()
        nan = float("nan")
        metrics = {"acc_parallel": nan, "acc_autoregressive": nan, "aux_l1": nan}
        if self.config.action_head == "continuous":  # L1 on normalized values, as OpenVLA-OFT
            loss = F.l1_loss(outputs, self.normalized_targets(batch))
        else:
            loss = action_loss(outputs, target, label_sigma)
            with torch.no_grad():
                acc = (outputs.argmax(-1) == target).float()
                metrics["acc_parallel"] = acc[parallel[:, 0]].mean().item() if parallel.any() else nan
                metrics["acc_autoregressive"] = acc[~parallel[:, 0]].mean().item() if not parallel.all() else nan
        if self.aux_head is not None and batch.aux is not None:  # the last position reads the whole sequence
            aux = self.aux_head.loss(out.last_hidden_state[:, -1].float(), batch.aux)
            metrics["aux_l1"] = aux.item()
            loss = loss + self.config.aux_weight * aux
        metrics["loss"] = loss.item()
        return loss, metrics

    # --- decoding: the one loop ------------------------------------------------------------------
    @torch.no_grad()
    def decode(self, batch: Batch, decoding: str | None = None, *, image_features: torch.Tensor | None = None,
               keep: list[torch.Tensor] | None = None, retrieve: int | None = None,
               engine: Engine | None = None) -> torch.Tensor:
        """(B, K*D) action codes (greedy bins, or the continuous head's normalized values): parallel
        (one pass over the query tokens) or autoregressive (one token at a time on a KV cache). Every
        inference path of the stack runs this loop.

        image_features: connector outputs computed elsewhere (the event-sparse encoder); the vision
        tower is then skipped. keep: per camera, indices of the image tokens the language model
        sees (token pruning; SmolVLM). retrieve: autoregressive only, image tokens per camera the
        decode steps still attend to (see `PrunedEngine`). engine: how the backbone runs (the
        static, compiled `vla.model.fast` engine); by default the family's own forward."""
        decoding = decoding or self.config.decoding
        if decoding not in ("parallel", "autoregressive"):
            raise ValueError(f"decoding={decoding!r}; expected 'parallel' or 'autoregressive'")
        if decoding == "autoregressive" and not self.config.decodes_autoregressively:
            raise ValueError(f"autoregressive decoding needs the bins head with per_dim tokens; this model has "
                             f"{self.config.action_head} / {self.config.action_tokens}: decode in parallel")
        ids, mask = self.prefix(batch)
        if engine is None and (keep is not None or retrieve is not None):
            features = image_features if image_features is not None else self.image_features(batch.images)
            engine = PrunedEngine(self, features, keep, retrieve if decoding == "autoregressive" else None)
        elif engine is None:
            pixels = self.pixel_values(batch.images) if image_features is None else None
            engine = LibraryEngine(self, pixels, image_features)
        N = self.config.num_action_tokens
        if decoding == "parallel":
            q = self.queries(ids.shape[0])
            codes = engine.prefill(torch.cat([ids, q], 1), torch.cat([mask, torch.ones_like(q)], 1), N, cache=False)
            return codes.reshape(ids.shape[0], -1)
        tokens = [engine.prefill(ids, mask, 1, cache=True)]
        while len(tokens) < N:
            tokens.append(engine.step(tokens[-1]))
        return torch.cat(tokens, 1)

    @torch.no_grad()
    def predict(self, batch: Batch, decoding: str | None = None, **options) -> torch.Tensor:
        """(B, K, D) absolute joint targets; `options` as for `decode`."""
        return self.values_from_codes(self.decode(batch, decoding, **options), batch.state)

    @torch.no_grad()
    def image_features(self, images: torch.Tensor) -> torch.Tensor:
        """(B * N, T, d) connector outputs of the images (SmolVLM / Idefics3)."""
        core = self.hf.model
        pixels = self.pixel_values(images).flatten(0, 1)
        return core.connector(core.vision_model(pixel_values=pixels).last_hidden_state)

    # --- checkpoints -----------------------------------------------------------------------------
    def save_pretrained(self, path: str | Path) -> Path:
        """One folder: safetensors weights, JSON configs, tokenizer, action/state tokenizers."""
        path = Path(path)
        path.mkdir(parents=True, exist_ok=True)
        save_model(self.backbone, str(path / WEIGHTS))
        if self.action_head is not None:
            save_model(self.action_head, str(path / HEAD_WEIGHTS))
        if self.aux_head is not None:  # kept so that training resumes; inference never runs it
            save_model(self.aux_head, str(path / AUX_WEIGHTS))
        config = {"vla": self.config.to_dict(), "backbone": self.backbone.config.to_dict()}
        (path / CONFIG).write_text(json.dumps(config, indent=2))
        self.tokenizer.save_pretrained(path)
        toks = {"action": self.action_tok.to_dict(), "state": self.state_tok.to_dict()}
        (path / TOKENIZERS).write_text(json.dumps(toks, indent=2))
        return path

    @classmethod
    def from_pretrained(cls, path: str | Path, device: str | torch.device = "cpu") -> VLAModel:
        """Restore a saved policy exactly. Reads JSON and safetensors only: nothing is unpickled."""
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
        if model.action_head is not None:
            if not (path / HEAD_WEIGHTS).is_file():
                raise CheckpointError(f"{path}: its config has the {config.action_head} head with "
                                      f"{config.action_tokens} tokens, whose weights {HEAD_WEIGHTS} are missing")
            load_weights(model.action_head, load_file(str(path / HEAD_WEIGHTS)), str(path / HEAD_WEIGHTS))
        if model.aux_head is not None and (path / AUX_WEIGHTS).is_file():
            load_weights(model.aux_head, load_file(str(path / AUX_WEIGHTS)), str(path / AUX_WEIGHTS))
        return model.to(device).eval()


class AuxHead(nn.Module):
    """Training-only grounding targets regressed from one hidden state: L1 on standardized values."""

    def __init__(self, hidden: int, dim: int):
        super().__init__()
        self.proj = nn.Linear(hidden, dim)
        self.register_buffer("mean", torch.zeros(dim))  # set from the dataset before training
        self.register_buffer("std", torch.ones(dim))

    def loss(self, hidden: torch.Tensor, target: torch.Tensor) -> torch.Tensor:
        return F.l1_loss(self.proj(hidden), (target - self.mean) / self.std)


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
    if config.backbone_path:
        backbone, tokenizer = load_local_backbone(config.backbone_path)
    else:
        tokenizer = build_text_tokenizer(texts)
    first, _ = add_vla_tokens(tokenizer, config.bins, config.action_dim)  # before the tiny model sizes its vocab
    if not config.backbone_path:
        backbone = tiny_backbone(config, tokenizer)
    return VLAModel(config, backbone, tokenizer, ActionTokenizer(action_low, action_high, config.bins, first),
                    ActionTokenizer(state_low, state_high, config.bins, first))
