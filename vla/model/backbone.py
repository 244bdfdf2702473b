"""VLM backbones from Hugging Face transformers: the tiny default built in code, or a local checkpoint.

A family adapter knows the few things that differ between VLM families: how many tokens an
image becomes, how image tokens are laid out in the sequence, and the shape `pixel_values`
takes. Supported: SmolVLM / Idefics3 (SigLIP tower, pixel-shuffle connector, Llama) and
PaliGemma (SigLIP tower, linear projector, Gemma). Nothing is ever downloaded.
"""

from __future__ import annotations

import json
from collections.abc import Iterable
from dataclasses import dataclass
from pathlib import Path

import torch
from tokenizers import Tokenizer, decoders, models, pre_tokenizers, trainers
from transformers import (
    AutoModelForImageTextToText,
    AutoTokenizer,
    PaliGemmaConfig,
    PreTrainedTokenizerFast,
    SmolVLMConfig,
)

from vla.model.config import VLAConfig

IDEFICS_SPECIALS = ["<image>", "<fake_token_around_image>", "<global-img>", "<end_of_utterance>"]
BASE_SPECIALS = ["<pad>", "<bos>", "<eos>", "<unk>"]


def value_token(i: int) -> str:
    return f"<v{i}>"


def query_token(d: int) -> str:
    return f"<q{d}>"


@dataclass
class Layout:
    """How one family lays out images in the token sequence."""

    family: str
    image_token_id: int
    tokens_per_image: int
    around_image: tuple[int, ...] = ()  # Idefics3: <fake_token_around_image> <global-img> before, fake after
    after_image: tuple[int, ...] = ()
    bos_id: int | None = None

    def image_block(self) -> list[int]:
        return [*self.around_image, *([self.image_token_id] * self.tokens_per_image), *self.after_image]

    def extra_inputs(self, ids: torch.Tensor) -> dict[str, torch.Tensor]:
        """PaliGemma's token types: all 1 (causal everywhere), as every family here attends."""
        return {"token_type_ids": torch.ones_like(ids)} if self.family == "paligemma" else {}

    def pixel_values(self, images: torch.Tensor) -> torch.Tensor:
        """(B, N, 3, H, W) normalized images -> the shape this family's model takes."""
        if self.family == "paligemma":
            return images.flatten(0, 1)  # (B * N, 3, H, W); features are scattered in order
        return images  # Idefics3 / SmolVLM take (B, N, 3, H, W)


def build_text_tokenizer(texts: Iterable[str], vocab_size: int = 512) -> PreTrainedTokenizerFast:
    """A byte-level BPE trained here, from the dataset's instructions, with the specials VLMs expect."""
    tok = Tokenizer(models.BPE(unk_token="<unk>"))
    tok.pre_tokenizer = pre_tokenizers.ByteLevel(add_prefix_space=True)
    tok.decoder = decoders.ByteLevel()
    trainer = trainers.BpeTrainer(
        vocab_size=vocab_size, special_tokens=BASE_SPECIALS + IDEFICS_SPECIALS,
        initial_alphabet=pre_tokenizers.ByteLevel.alphabet(), show_progress=False,
    )
    tok.train_from_iterator(list(texts), trainer=trainer)
    return PreTrainedTokenizerFast(
        tokenizer_object=tok, pad_token="<pad>", bos_token="<bos>", eos_token="<eos>", unk_token="<unk>",
        extra_special_tokens={"image_token": "<image>", "fake_image_token": "<fake_token_around_image>",
                              "global_image_token": "<global-img>", "end_of_utterance_token": "<end_of_utterance>"},
    )


def add_vla_tokens(tokenizer, bins: int, action_dim: int) -> tuple[int, list[int]]:
    """Append value tokens <v0>.. and query tokens <q0>..; returns (first value id, query ids).

    Added tokens get new ids after the existing vocabulary: no text token is overwritten.
    """
    values = [value_token(i) for i in range(bins)]
    queries = [query_token(d) for d in range(action_dim)]
    missing = [t for t in values + queries if t not in tokenizer.get_vocab()]
    if missing:
        tokenizer.add_tokens(missing, special_tokens=True)
    ids = tokenizer.convert_tokens_to_ids(values)
    if ids != list(range(ids[0], ids[0] + bins)):
        raise ValueError("value tokens did not get contiguous ids; the tokenizer already holds some of them")
    return ids[0], tokenizer.convert_tokens_to_ids(queries)


def backbone_config(config: VLAConfig, vocab: int, pad_id: int, bos_id: int, eos_id: int, image_id: int):
    """The Hugging Face config of a backbone of the configured family and size."""
    vision = {"image_size": config.image_size, **config.vision}
    text = {"vocab_size": vocab, "max_position_embeddings": 1024, "pad_token_id": pad_id,
            "bos_token_id": bos_id, "eos_token_id": eos_id, **config.text}
    if config.family in ("smolvlm", "idefics3"):
        return SmolVLMConfig(vision_config=vision, text_config={"model_type": "llama", **text},
                             scale_factor=config.scale_factor, image_token_id=image_id, vocab_size=vocab,
                             pad_token_id=pad_id)
    patches = (config.image_size // vision.get("patch_size", 16)) ** 2
    hf = PaliGemmaConfig(
        vision_config={"model_type": "siglip_vision_model", "projection_dim": text["hidden_size"], **vision},
        text_config={"model_type": "gemma", "head_dim": text["hidden_size"] // text["num_attention_heads"], **text},
        image_token_id=image_id, projection_dim=text["hidden_size"], hidden_size=text["hidden_size"],
        vocab_size=vocab, pad_token_id=pad_id,
    )
    hf.text_config.num_image_tokens = patches
    return hf


def tiny_backbone(config: VLAConfig, tokenizer) -> torch.nn.Module:
    """A randomly initialized backbone of the configured family, sized by the config."""
    hf = backbone_config(config, len(tokenizer), tokenizer.pad_token_id, tokenizer.bos_token_id,
                         tokenizer.eos_token_id, tokenizer.convert_tokens_to_ids("<image>"))
    torch.manual_seed(0)
    return AutoModelForImageTextToText.from_config(hf)


class ConvStem(torch.nn.Module):
    """Pixels -> the patch grid by log2(patch) 3x3 stride-2 convolutions (GroupNorm, GELU), then a 1x1
    projection to the tower's width: the same (B, width, H/patch, W/patch) as the patch projection it
    replaces, so position embeddings, attention masks and the connector are unchanged."""

    def __init__(self, width: int, patch: int, channels: int = 3):
        super().__init__()
        layers, c = [], channels
        for i in range(patch.bit_length() - 1):
            out = min(width, 16 * 2**i)
            layers += [torch.nn.Conv2d(c, out, 3, stride=2, padding=1, bias=False), torch.nn.GroupNorm(1, out),
                       torch.nn.GELU()]
            c = out
        self.layers = torch.nn.Sequential(*layers, torch.nn.Conv2d(c, width, 1))

    def forward(self, pixels: torch.Tensor) -> torch.Tensor:
        return self.layers(pixels)


def install_vision_stem(backbone: torch.nn.Module, stem: str) -> None:
    """Replace the vision tower's patch projection by the configured stem ("patch": keep it)."""
    if stem == "patch":
        return
    name = next(n for n, m in backbone.named_modules()
                if n.endswith("embeddings.patch_embedding") and isinstance(m, torch.nn.Conv2d))
    parent, _, attribute = name.rpartition(".")
    old = backbone.get_submodule(name)
    setattr(backbone.get_submodule(parent), attribute, ConvStem(old.out_channels, old.kernel_size[0], old.in_channels))


def load_local_backbone(path: str | Path):
    """(model, tokenizer) from a local Hugging Face checkpoint directory; never the network."""
    path = Path(path)
    model = AutoModelForImageTextToText.from_pretrained(path, local_files_only=True)
    tokenizer = AutoTokenizer.from_pretrained(path, local_files_only=True)
    return model, tokenizer


def layout_for(family: str, backbone, tokenizer) -> Layout:
    cfg = backbone.config
    image_id = cfg.image_token_id
    if family in ("smolvlm", "idefics3"):
        vision = cfg.vision_config
        tokens = (vision.image_size // vision.patch_size) ** 2 // cfg.scale_factor**2
        fake, glob = tokenizer.convert_tokens_to_ids(["<fake_token_around_image>", "<global-img>"])
        return Layout(family, image_id, tokens, around_image=(fake, glob), after_image=(fake,))
    if family == "paligemma":
        vision = cfg.vision_config
        tokens = (vision.image_size // vision.patch_size) ** 2
        return Layout(family, image_id, tokens, bos_id=tokenizer.bos_token_id)
    raise ValueError(f"unsupported backbone family {family!r}")


def image_stats(path: str | Path | None) -> tuple[list[float], list[float]]:
    """Image normalization (mean, std) of a checkpoint's processor; SigLIP's 0.5/0.5 otherwise."""
    if path is not None:
        pre = Path(path) / "preprocessor_config.json"
        if pre.is_file():
            data = json.loads(pre.read_text())
            if "image_mean" in data and "image_std" in data:
                return list(data["image_mean"]), list(data["image_std"])
    return [0.5, 0.5, 0.5], [0.5, 0.5, 0.5]
