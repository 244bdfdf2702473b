"""VLA model configuration: what is built, how actions are tokenized and decoded."""

from __future__ import annotations

import json
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

import yaml

from vla.robot import CONFIG_DIR, ConfigError
from vla.types import OBS_STATE

MODEL_DIR = CONFIG_DIR / "models"
DECODING_MODES = ("parallel", "autoregressive")
ACTION_HEADS = ("bins", "continuous")
ACTION_TOKENS = ("per_dim", "per_step")
GRIPPER_MODES = ("quantile", "physical")
VISION_STEMS = ("patch", "conv")
FAMILIES = ("smolvlm", "idefics3", "paligemma")


@dataclass
class VLAConfig:
    """Everything needed to rebuild a VLA policy; stored as config.json in a checkpoint."""

    family: str = "smolvlm"
    image_size: int = 128
    vision: dict[str, Any] = field(default_factory=dict)
    text: dict[str, Any] = field(default_factory=dict)
    scale_factor: int = 2
    max_text_tokens: int = 32
    chunk_size: int = 20  # chosen by `vla bench chunk` (docs/BENCHMARKS.md), as in tiny.yaml
    n_action_steps: int = 10
    bins: int = 256
    action_reference: str = "state"  # predict targets relative to the current state, or 'absolute'
    decoding: str = "parallel"
    # bins: 256-way classification per action value (RT-2/OpenVLA); continuous: L1 regression of the
    # normalized value (OpenVLA-OFT). per_dim: one action position per value (K x D); per_step: one per
    # time step (K), read out into its D values. Autoregressive decoding needs bins and per_dim.
    action_head: str = "bins"
    action_tokens: str = "per_dim"
    # quantile: the gripper is binned like a joint (1st/99th percentiles, relative to the state);
    # physical: absolute gripper targets and gripper state binned over their whole observed range,
    # so "fully open" is reachable and "closed on nothing" differs from "closed on a cube".
    gripper: str = "quantile"
    gripper_dim: int | None = None  # index of the gripper in the action (set from the joint names)
    # Training-only grounding targets (embodied chain-of-thought's idea, never decoded): per-frame
    # features such as observation.environment_state, regressed at one extra position after the
    # action positions. Causal attention keeps the actions blind to it, so inference is unchanged.
    aux_targets: list[str] = field(default_factory=list)
    aux_dim: int = 0  # their total length, set from the dataset
    aux_weight: float = 1.0
    backbone_path: str | None = None  # a local Hugging Face checkpoint directory instead of a tiny config
    # How the tiny vision tower turns pixels into patch embeddings: "patch", one patch_size x patch_size
    # projection (SigLIP's); "conv", a stack of 3x3 stride-2 convolutions down to the same grid
    # (Xiao et al. 2021, "Early convolutions help transformers see better"), which sees a cube smaller
    # than a patch. A local checkpoint keeps its own tower.
    vision_stem: str = "patch"
    # Filled in from the dataset when training starts:
    cameras: list[str] = field(default_factory=list)
    # Observation keys whose values make up the state tokens, concatenated. observation.state comes
    # first; its first action_dim values are the reference of relative actions. Adding
    # observation.environment_state (privileged object positions) is the oracle-perception diagnostic.
    state_keys: list[str] = field(default_factory=lambda: [OBS_STATE])
    state_dim: int = 0
    action_dim: int = 0
    fps: float = 10.0
    joint_names: list[str] = field(default_factory=list)

    def __post_init__(self) -> None:
        if self.family not in FAMILIES:
            raise ConfigError(f"family={self.family!r}; supported backbone families: {', '.join(FAMILIES)}")
        if self.decoding not in DECODING_MODES:
            raise ConfigError(f"decoding={self.decoding!r}; expected one of {DECODING_MODES}")
        for name, allowed in (("action_head", ACTION_HEADS), ("action_tokens", ACTION_TOKENS),
                              ("gripper", GRIPPER_MODES), ("vision_stem", VISION_STEMS)):
            if getattr(self, name) not in allowed:
                raise ConfigError(f"{name}={getattr(self, name)!r}; expected one of {allowed}")
        if self.decoding == "autoregressive" and not self.decodes_autoregressively:
            raise ConfigError(f"decoding='autoregressive' needs action_head='bins' and action_tokens='per_dim'; "
                              f"got {self.action_head!r} and {self.action_tokens!r}")
        overlap = sorted(set(self.aux_targets) & set(self.state_keys))
        if overlap:
            raise ConfigError(f"aux_targets {overlap} are also state_keys: a target the model reads is no target")
        if self.gripper == "physical" and self.gripper_dim is None:
            raise ConfigError("gripper='physical' needs gripper_dim (the gripper's index in the action)")
        if self.action_reference not in ("state", "absolute"):
            raise ConfigError(f"action_reference={self.action_reference!r}; expected 'state' or 'absolute'")
        if not 2 <= self.bins <= 4096:
            raise ConfigError(f"bins={self.bins}; expected 2..4096")
        if self.chunk_size < 1 or not 1 <= self.n_action_steps <= self.chunk_size:
            raise ConfigError(
                f"chunk_size={self.chunk_size}, n_action_steps={self.n_action_steps}; "
                "expected chunk_size >= 1 and 1 <= n_action_steps <= chunk_size"
            )
        if not self.state_keys or self.state_keys[0] != OBS_STATE or len(set(self.state_keys)) != len(self.state_keys):
            raise ConfigError(f"state_keys={self.state_keys}; expected {OBS_STATE!r} first, each key once")
        if self.vision_stem != "patch" and self.backbone_path is not None:
            raise ConfigError(f"vision_stem={self.vision_stem!r} replaces a tiny tower's patch projection; "
                              f"the checkpoint {self.backbone_path} keeps its own (drop vision_stem)")
        if self.backbone_path is None:
            patch = int(self.vision.get("patch_size", 16))
            if self.vision_stem == "conv" and (patch < 2 or patch & (patch - 1)):
                raise ConfigError(f"vision_stem='conv' halves the image down to the patch grid: patch_size="
                                  f"{patch} must be a power of two of at least 2")
            if self.image_size % (patch * self.scale_factor):
                raise ConfigError(
                    f"image_size={self.image_size} must be a multiple of patch_size x scale_factor = "
                    f"{patch * self.scale_factor}"
                )

    @property
    def num_action_tokens(self) -> int:
        """Action positions in the sequence: K x D per value, or K, one per time step."""
        return self.chunk_size * (self.action_dim if self.action_tokens == "per_dim" else 1)

    @property
    def decodes_autoregressively(self) -> bool:
        """Autoregressive decoding feeds each action token back: value tokens, one per value."""
        return self.action_head == "bins" and self.action_tokens == "per_dim"

    def executed_steps(self, n_action_steps: int | None = None) -> int:
        """Actions executed per inference: `n_action_steps` if given (checked against the chunk), else the config's."""
        n = n_action_steps or self.n_action_steps
        if not 1 <= n <= self.chunk_size:
            raise ValueError(f"n_action_steps={n}; expected 1..{self.chunk_size}")
        return n

    @property
    def decoding_modes(self) -> tuple[str, ...]:
        """The decoding modes this action layout has (parallel always)."""
        return DECODING_MODES if self.decodes_autoregressively else ("parallel",)

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> VLAConfig:
        data = renamed_keys(data, "VLA config")
        known = set(cls.__dataclass_fields__)
        unknown = sorted(set(data) - known)
        if unknown:
            raise ConfigError(f"unknown VLA config field(s) {unknown}; known: {sorted(known)}")
        return cls(**data)


# Checkpoints and configs written before the chunk words followed LeRobot's still load.
OLD_KEYS = {"chunk_length": "chunk_size", "execute_steps": "n_action_steps"}


def renamed_keys(data: dict[str, Any], what: str) -> dict[str, Any]:
    """`data` with the old chunk keys under their LeRobot names; both spellings at once is an error."""
    both = [old for old, new in OLD_KEYS.items() if old in data and new in data]
    if both:
        raise ConfigError(f"{what} has both {both} and their new names {[OLD_KEYS[o] for o in both]}; keep the new")
    return {OLD_KEYS.get(k, k): v for k, v in data.items()}


def load_model_config(name_or_path: str | Path = "tiny", **overrides: Any) -> VLAConfig:
    """`configs/models/<name>.yaml`, a YAML path, or a local Hugging Face checkpoint directory."""
    path = Path(name_or_path)
    if path.is_dir():
        if not (path / "config.json").is_file():
            raise ConfigError(f"{path} is not a Hugging Face checkpoint directory: config.json is missing")
        return VLAConfig(**{"family": _family_of(path), "backbone_path": str(path), **overrides})
    if path.suffix not in (".yaml", ".yml"):
        path = MODEL_DIR / f"{name_or_path}.yaml"
    if not path.is_file():
        known = ", ".join(sorted(p.stem for p in MODEL_DIR.glob("*.yaml")))
        raise ConfigError(f"model {str(name_or_path)!r} not found at {path}; known: {known}, or a checkpoint dir")
    data = renamed_keys(yaml.safe_load(path.read_text()) or {}, str(path))
    if "chunk_size" in overrides and "n_action_steps" not in overrides:  # a shorter K executes at most K
        overrides["n_action_steps"] = min(int(data.get("n_action_steps", 1)), int(overrides["chunk_size"]))
    return VLAConfig.from_dict({**data, **overrides})


def _family_of(path: Path) -> str:
    model_type = json.loads((path / "config.json").read_text()).get("model_type", "?")
    if model_type not in FAMILIES:
        raise ConfigError(
            f"{path}: model_type {model_type!r} is not a supported VLM family; supported: {', '.join(FAMILIES)}"
        )
    return model_type
