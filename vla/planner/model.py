"""The planner's model: the VLA backbone's language head as describer, plan writer and world
model, plus a critic head, all on one backbone.

Four uses of one sequence model, told apart by their prompts:

    describe   [images] "describe:"                         -> the scene description
    plan       [images] "plan for: <instruction>"           -> "goal: <final state> plan: <steps>"
    world      "state: <scene> do: <subtask> then:"         -> the state change the subtask causes
    critic     "goal: <final state> state: <scene>" <eos>   -> a scalar cost (linear head on the last token)

The world model and the critic read text only: they roll plans forward from predicted states,
for which no image exists. Prompts are right-padded to fixed per-use lengths (stored in the
checkpoint), so training and inference see the same positions. Generation is greedy or
sampled, with a KV cache, and restricted to text tokens (never action/value tokens).
"""

from __future__ import annotations

import json
from dataclasses import asdict, dataclass, field
from pathlib import Path

import torch
import torch.nn.functional as F
from safetensors.torch import load_file, save_model
from torch import nn

from vla.model.vla import CheckpointError, VLAModel, load_weights

PLANNER_WEIGHTS = "planner.safetensors"
PLANNER_CONFIG = "planner.json"
USES = ("describe", "plan", "world", "critic")


def describe_prompt() -> str:
    return "describe:"


def plan_prompt(instruction: str) -> str:
    return f"plan for: {' '.join(instruction.split())}"


def world_prompt(state: str, subtask: str) -> str:
    return f"state: {state} do: {subtask} then:"


def critic_prompt(goal: str, state: str) -> str:
    return f"goal: {goal} state: {state}"


@dataclass
class PlannerConfig:
    """Fixed sequence lengths per use (measured on the training data, with room to spare)."""

    prompt_tokens: dict[str, int] = field(
        default_factory=lambda: {"describe": 16, "plan": 64, "world": 80, "critic": 96})
    target_tokens: dict[str, int] = field(default_factory=lambda: {"describe": 48, "plan": 128, "world": 32})
    temperature: float = 1.0  # sampling temperature of System-2's extra candidates

    @classmethod
    def from_dict(cls, data: dict) -> PlannerConfig:
        unknown = sorted(set(data) - set(cls.__dataclass_fields__))
        if unknown:
            raise CheckpointError(f"unknown planner config field(s) {unknown}")
        return cls(**data)


class PlannerModel(nn.Module):
    def __init__(self, vla: VLAModel, config: PlannerConfig | None = None):
        super().__init__()
        self.vla = vla
        self.config = config or PlannerConfig()
        hidden = vla.hf.config.text_config.hidden_size
        self.critic = nn.Linear(hidden, 1)
        tok = vla.tokenizer
        self.eos_id = tok.eos_token_id
        self.pad_id = tok.pad_token_id
        # Text vocabulary: everything below the value tokens, minus image/special tokens.
        banned = [i for i in tok.all_special_ids if i != self.eos_id]
        allowed = torch.zeros(vla.first_value_id, dtype=torch.bool)
        allowed[:] = True
        allowed[[i for i in banned if i < vla.first_value_id]] = False
        self.register_buffer("allowed", allowed, persistent=False)

    @property
    def device(self) -> torch.device:
        return self.vla.device

    # --- sequences ----------------------------------------------------------------------------
    def encode(self, texts: list[str], length: int, what: str, eos: bool = False) -> tuple[torch.Tensor, torch.Tensor]:
        """(B, length) right-padded ids and mask; a text that does not fit is an error naming it."""
        enc = self.vla.tokenizer(texts, add_special_tokens=False)["input_ids"]
        ids = torch.full((len(texts), length), self.pad_id, dtype=torch.long)
        mask = torch.zeros((len(texts), length), dtype=torch.long)
        for i, row in enumerate(enc):
            row = row + [self.eos_id] if eos else row
            if len(row) > length:
                raise ValueError(f"{what} text is {len(row)} tokens; this planner takes at most {length}: "
                                 f"{texts[i][:80]!r}")
            ids[i, : len(row)] = torch.tensor(row)
            mask[i, : len(row)] = 1
        return ids.to(self.device), mask.to(self.device)

    def _prefix(self, use: str, prompts: list[str], images: torch.Tensor | None):
        """ids, mask, pixels of [image blocks] + prompt padded to this use's length."""
        ids, mask = self.encode(prompts, self.config.prompt_tokens[use], f"{use} prompt")
        pixels = None
        if images is not None:
            head = self.vla.head_ids(images.shape[1]).expand(len(prompts), -1)
            ids = torch.cat([head, ids], 1)
            mask = torch.cat([torch.ones_like(head), mask], 1)
            pixels = self.vla.pixel_values(images)
        return ids, mask, pixels

    def _logits(self, hidden: torch.Tensor) -> torch.Tensor:
        head = self.vla.hf.get_output_embeddings()
        n = self.allowed.shape[0]
        logits = F.linear(hidden, head.weight[:n], None if head.bias is None else head.bias[:n])
        return logits.masked_fill(~self.allowed, float("-inf"))

    # --- training -----------------------------------------------------------------------------
    def lm_loss(self, use: str, prompts: list[str], targets: list[str],
                images: torch.Tensor | None = None) -> tuple[torch.Tensor, float]:
        """Cross-entropy on the target tokens (and their <eos>) only; returns (loss, token accuracy)."""
        ids, mask, pixels = self._prefix(use, prompts, images)
        tgt, tmask = self.encode(targets, self.config.target_tokens[use] + 1, f"{use} target", eos=True)
        P, T = ids.shape[1], tgt.shape[1]
        out = self.vla.language(torch.cat([ids, tgt], 1), torch.cat([mask, tmask], 1), pixels)
        h = out.last_hidden_state[:, P - 1 : P - 1 + T]  # position before each target token predicts it
        logits = self._logits(h)
        labels = tgt.masked_fill(tmask == 0, -100)
        loss = F.cross_entropy(logits.flatten(0, 1).float(), labels.flatten(), ignore_index=-100)
        with torch.no_grad():
            acc = ((logits.argmax(-1) == tgt) & (tmask == 1)).sum() / tmask.sum()
        return loss, float(acc)

    def cost(self, goals: list[str], states: list[str]) -> torch.Tensor:
        """(B,) critic costs: lower is closer to the goal."""
        texts = [critic_prompt(g, s) for g, s in zip(goals, states, strict=True)]
        ids, mask = self.encode(texts, self.config.prompt_tokens["critic"], "critic prompt", eos=True)
        h = self.vla.language(ids, mask).last_hidden_state
        last = h[torch.arange(len(texts), device=self.device), mask.sum(1) - 1]
        return self.critic(last).squeeze(-1).float()

    # --- generation ---------------------------------------------------------------------------
    @torch.no_grad()
    def generate(self, use: str, prompts: list[str], images: torch.Tensor | None = None,
                 sample: bool = False, generator: torch.Generator | None = None,
                 forced: list[str] | None = None) -> list[str]:
        """Text continuation of each prompt up to <eos> (greedy, or sampled at the configured
        temperature). `forced`: text each continuation must start with (teacher-forced)."""
        ids, mask, pixels = self._prefix(use, prompts, images)
        B, limit = len(prompts), self.config.target_tokens[use] + 1
        start = [[] for _ in range(B)]
        if forced is not None:
            start = self.vla.tokenizer(forced, add_special_tokens=False)["input_ids"]
        out = self.vla.language(ids, mask, pixels, use_cache=True)
        cache, h = out.past_key_values, out.last_hidden_state[:, -1:]
        rows: list[list[int]] = [[] for _ in range(B)]
        finished = torch.zeros(B, dtype=torch.bool, device=self.device)
        for j in range(limit):
            logits = self._logits(h[:, -1]).float()
            if sample:
                probs = torch.softmax(logits / self.config.temperature, -1)
                token = torch.multinomial(probs.cpu(), 1, generator=generator).squeeze(1).to(self.device)
            else:
                token = logits.argmax(-1)
            for i in range(B):
                if j < len(start[i]):
                    token[i] = start[i][j]
            token = token.masked_fill(finished, self.pad_id)
            for i in range(B):
                if not finished[i] and token[i] != self.eos_id:
                    rows[i].append(int(token[i]))
            finished |= token == self.eos_id
            if bool(finished.all()) or j == limit - 1:
                break
            mask = torch.cat([mask, torch.ones_like(token)[:, None]], 1)
            out = self.vla.language(token[:, None], mask, past_key_values=cache, use_cache=True)
            cache, h = out.past_key_values, out.last_hidden_state
        return [" ".join(self.vla.tokenizer.decode(r, skip_special_tokens=True).split()) for r in rows]

    # --- checkpoints --------------------------------------------------------------------------
    def save_pretrained(self, path: str | Path) -> Path:
        """The VLA checkpoint folder plus planner.safetensors (critic) and planner.json."""
        path = self.vla.save_pretrained(path)
        save_model(self.critic, str(path / PLANNER_WEIGHTS))
        (path / PLANNER_CONFIG).write_text(json.dumps(asdict(self.config), indent=2))
        return path

    @classmethod
    def from_pretrained(cls, path: str | Path, device: str | torch.device = "cpu") -> PlannerModel:
        """A planner checkpoint; a plain VLA checkpoint is refused with a clear message."""
        path = Path(path)
        missing = [f for f in (PLANNER_WEIGHTS, PLANNER_CONFIG) if not (path / f).is_file()]
        if missing:
            raise CheckpointError(f"{path} is not a planner checkpoint: missing {missing} "
                                  "(train one with `vla train --objective planner`)")
        config = PlannerConfig.from_dict(json.loads((path / PLANNER_CONFIG).read_text()))
        model = cls(VLAModel.from_pretrained(path), config)
        load_weights(model.critic, load_file(str(path / PLANNER_WEIGHTS)), str(path / PLANNER_WEIGHTS))
        return model.to(device).eval()
