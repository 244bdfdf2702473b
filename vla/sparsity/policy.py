"""The event-triggered VLA policy: infer only when the world changed, encode only what changed.

At every control step the policy is asked for the next action(s). It runs the event detector
on each camera against the frame each patch was last encoded from, then:

- Inference-level trigger: if less than `trigger_threshold` of the trigger cameras' patches
  fired and the last predicted chunk still has actions (and at most `max_open_loop` steps were
  served from it in a row; by default the checkpoint's own `n_action_steps` - 1, so the trigger
  never re-plans less often than the fixed schedule the policy was trained for), no inference
  runs: the next queued action is returned. If at least that much fired, queued actions are
  dropped and inference runs at once.
- Events (with an arm mask, `vla.sparsity.arm`): the patches the arm covers now, or covered when the
  patch was last encoded, are discounted; the fired patches left over, weighed by their relevance
  to the instruction (`relevance`: uniform, or the policy's own action saliency taken at the
  episode's first inference and at every event), fire inference when they reach `event_patches`.
  A cube moved where the arm is not fires at once; the arm moving over a still table does not.
- Token-level reuse: when inference runs, only fired patches are re-encoded in the vision
  tower (`SparseVisionEncoder`); the others reuse cached keys/values and features.

With every threshold at zero every patch fires at every step and the result equals the dense
policy's exactly (tested). `step_stats` records, per call, whether inference ran and how many
vision tokens were recomputed and reused.
"""

from __future__ import annotations

import copy
import time
from collections import deque
from dataclasses import asdict, dataclass, fields, replace
from pathlib import Path
from typing import Any

import numpy as np
import torch
import yaml

from vla.model.config import renamed_keys
from vla.model.vla import VLAModel
from vla.policy import VLAPolicy
from vla.robot import CONFIG_DIR, ConfigError
from vla.sparsity.arm import ARM_MASK, ArmMask
from vla.sparsity.encoder import SparseVisionEncoder
from vla.sparsity.events import EventDetector, EventThresholds
from vla.sparsity.pruning import coverage_select
from vla.types import OBS_STATE, Observation, check_observation

DEFAULT_CONFIG = CONFIG_DIR / "sparsity" / "default.yaml"
RELEVANCE = ("uniform", "saliency")


@dataclass
class SparsityConfig:
    pixel_threshold: float = 0.10
    pixel_floor: float = 6.0
    on_threshold: float = 0.02
    off_threshold: float = 0.01
    trigger_threshold: float = 0.5
    trigger_cameras: list[str] | None = None
    max_open_loop: int | None = None  # None: the checkpoint's n_action_steps - 1 (its fixed schedule)
    n_action_steps: int = 1
    token_reuse: bool = True
    token_budget: int | None = None  # image tokens per camera the language model keeps (None: all)
    retrieve_tokens: int | None = None  # autoregressive decoding: visual tokens per camera the decode steps attend to
    refresh_every: int = 20  # re-encode every patch densely at least every this many inferences
    arm_mask: str | None = "auto"  # the arm mask file; auto: the policy folder's, if it has one; null: none
    arm_margin: int = 1  # patches the predicted arm mask is grown by
    event_patches: float | None = 2.0  # fired patches off the arm (relevance-weighted) that trigger; null: off
    relevance: str = "uniform"  # how fired patches off the arm are weighed: uniform | saliency

    def __post_init__(self) -> None:
        for name in ("pixel_threshold", "pixel_floor", "on_threshold", "off_threshold", "trigger_threshold"):
            value = getattr(self, name)
            top = 1.0 if name in ("on_threshold", "off_threshold", "trigger_threshold") else 1e9
            if not isinstance(value, (int, float)) or not 0 <= value <= top:
                raise ConfigError(f"sparsity {name}={value!r}; expected a number in [0, {top:g}]")
        if self.off_threshold > self.on_threshold:
            raise ConfigError(f"sparsity off_threshold={self.off_threshold} exceeds on_threshold={self.on_threshold}")
        if self.token_budget is not None and (not isinstance(self.token_budget, int) or self.token_budget < 1):
            raise ConfigError(f"sparsity token_budget={self.token_budget!r}; expected a positive integer or null")
        if self.retrieve_tokens is not None and (not isinstance(self.retrieve_tokens, int) or self.retrieve_tokens < 1):
            raise ConfigError(f"sparsity retrieve_tokens={self.retrieve_tokens!r}; expected a positive integer or null")
        if self.relevance not in RELEVANCE:
            raise ConfigError(f"sparsity relevance={self.relevance!r}; expected one of {RELEVANCE}")
        if not isinstance(self.arm_margin, int) or self.arm_margin < 0:
            raise ConfigError(f"sparsity arm_margin={self.arm_margin!r}; expected an integer >= 0")
        if self.event_patches is not None and (not isinstance(self.event_patches, (int, float))
                                               or self.event_patches <= 0):
            raise ConfigError(f"sparsity event_patches={self.event_patches!r}; expected a number > 0, or null")
        if self.refresh_every < 1:
            raise ConfigError(f"sparsity refresh_every={self.refresh_every}; expected >= 1")
        if (self.max_open_loop is not None and (not isinstance(self.max_open_loop, int) or self.max_open_loop < 0)) \
                or not isinstance(self.n_action_steps, int) or self.n_action_steps < 1:
            raise ConfigError(f"sparsity max_open_loop={self.max_open_loop!r} (an integer >= 0, or null for the "
                              f"checkpoint's schedule), n_action_steps={self.n_action_steps!r} (an integer >= 1)")

    @property
    def thresholds(self) -> EventThresholds:
        return EventThresholds(self.pixel_threshold, self.pixel_floor, self.on_threshold, self.off_threshold)


def load_sparsity_config(path: str | Path | None = None, **overrides: Any) -> SparsityConfig:
    path = Path(path) if path else DEFAULT_CONFIG
    if not path.is_file():
        raise ConfigError(f"sparsity config {path} not found")
    data = renamed_keys(yaml.safe_load(path.read_text()) or {}, str(path))
    data.update({k: v for k, v in overrides.items() if v is not None})
    known = {f.name for f in fields(SparsityConfig)}
    unknown = sorted(set(data) - known)
    if unknown:
        raise ConfigError(f"{path}: unknown sparsity key(s) {unknown}; known: {sorted(known)}")
    return SparsityConfig(**data)


def load_arm_mask(sparsity: SparsityConfig, policy_dir: str | Path | None) -> ArmMask | None:
    """The arm mask the config names: a file, the policy folder's own (`auto`, None where it has none), or None."""
    if sparsity.arm_mask is None:
        return None
    if sparsity.arm_mask == "auto":
        path = Path(policy_dir) / ARM_MASK if policy_dir is not None else None
        return ArmMask.load(path) if path is not None and path.is_file() else None
    return ArmMask.load(sparsity.arm_mask)


class SparseVLAPolicy(VLAPolicy):
    def __init__(self, model: VLAModel, sparsity: SparsityConfig | None = None, name: str = "vla-sparse",
                 world_cameras: list[str] | None = None, arm_mask: ArmMask | None = None, **kw):
        """`world_cameras`: the robot's cameras not mounted on the arm (`RobotConfig.world_cameras`),
        the trigger's default when the sparsity config names none. `arm_mask` (`load_arm_mask`): the
        event rule's arm discount; without one only `trigger_threshold` triggers."""
        self.sparsity = sparsity or SparsityConfig()
        if self.sparsity.max_open_loop is None:  # the checkpoint's schedule: infer every n_action_steps
            self.sparsity = replace(self.sparsity, max_open_loop=max(0, model.config.n_action_steps - 1))
        super().__init__(model, n_action_steps=min(self.sparsity.n_action_steps, model.config.chunk_size),
                         name=name, fast=False, **kw)  # the sparse path runs the eager model
        cams = self.sparsity.trigger_cameras or [c for c in (world_cameras or []) if c in model.config.cameras]
        unknown = sorted(set(cams or []) - set(model.config.cameras))
        if unknown:
            raise ConfigError(f"sparsity trigger_cameras {unknown} are not cameras of this policy "
                              f"({model.config.cameras})")
        self.trigger_cameras = list(cams) if cams else list(model.config.cameras)
        dtype = next(model.hf.parameters()).dtype
        if dtype != torch.float32:
            raise ConfigError(f"the event-sparse path runs the eager fp32 model; this one is {dtype} "
                              "(load it without the static GPU path: VLAPolicy.from_pretrained(..., fast=False))")
        self.encoder = SparseVisionEncoder(model.hf)
        self.detector = EventDetector(self.encoder.grid, self.sparsity.thresholds)
        if arm_mask is not None:  # it reads observation.state: the joints, whatever else the policy reads
            joints = len(model.config.joint_names or []) or model.config.state_dim
            missing = sorted(set(self.trigger_cameras) - set(arm_mask.cameras))
            if missing or arm_mask.grid != self.encoder.grid or arm_mask.state_dim != joints:
                raise ConfigError(f"the arm mask covers cameras {arm_mask.cameras} on a {arm_mask.grid}x"
                                  f"{arm_mask.grid} grid from {arm_mask.state_dim} joint values; this policy "
                                  f"triggers on {self.trigger_cameras}, a {self.encoder.grid}x{self.encoder.grid} "
                                  f"grid, {joints} joint values in observation.state")
        self.arm_mask = arm_mask
        self.lm_image_tokens = model.layout.tokens_per_image * len(model.config.cameras)
        self.metadata["sparsity"] = {**asdict(self.sparsity), "arm_mask_loaded": arm_mask is not None}
        self.queue: list[np.ndarray] = []
        self.open_loop = 0
        self.since_refresh = 0
        self.arm_seen: dict[str, np.ndarray] = {}  # per trigger camera: the arm was on the patch since its encoding
        self._arm_state: tuple[np.ndarray, dict[str, np.ndarray]] | None = None  # the last state and its patches
        self.weights: dict[str, np.ndarray] = {}  # per trigger camera: relevance of each patch, mean 1
        self.step_stats: deque[dict[str, Any]] = deque(maxlen=200_000)

    def reset(self) -> None:
        self.queue, self.open_loop, self.since_refresh = [], 0, 0
        self.arm_seen, self.weights, self._arm_state = {}, {}, None
        self.detector.reset()
        self.encoder.reset()

    def session(self) -> SparseVLAPolicy:
        """The same model and settings with their own per-camera caches, queue and stats: the state of
        one robot. The policy server keeps one session per client, so two robots' images never meet."""
        other = copy.copy(self)
        other.encoder = SparseVisionEncoder(self.model.hf)
        other.detector = EventDetector(self.encoder.grid, self.sparsity.thresholds)
        other.step_stats = deque(maxlen=self.step_stats.maxlen)
        other.reset()
        return other

    def predict_chunk(self, obs: Observation) -> np.ndarray:
        started = time.perf_counter()
        cfg = self.model.config  # the observation is checked before anything is decided; the batch is
        images, _ = check_observation(obs, cfg.cameras, cfg.state_dim, cfg.state_keys)  # built only to infer
        frames = dict(zip(cfg.cameras, images, strict=True))
        # Only the trigger cameras decide whether to infer: a step that executes from the queue looks at
        # nothing else. The other cameras' changed patches are needed only when the tower runs.
        fired = {cam: self.detector.detect(cam, frames[cam]) for cam in self.trigger_cameras}
        fraction = sum(float(fired[c].mean()) for c in self.trigger_cameras) / len(self.trigger_cameras)
        n = self.n_action_steps
        stats: dict[str, Any] = {"changed_fraction": round(fraction, 4), "interrupted": False}
        arm_now = self._arm_patches(obs)
        event = self._event_weight(fired)
        if event is not None:
            stats["event_weight"] = round(event, 3)
        # Why infer now: no actions left (the first call too), an event off the arm, a change of much of the
        # view, or the schedule; None: the next queued action.
        if len(self.queue) < n:
            reason = "empty"
        elif event is not None and self.sparsity.event_patches is not None and event >= self.sparsity.event_patches:
            reason = "event"
        elif fraction >= self.sparsity.trigger_threshold:
            reason = "change"
        elif self.open_loop >= self.sparsity.max_open_loop:
            reason = "schedule"
        else:
            reason = None
        stats["reason"] = reason
        if reason is None:
            out, self.queue = self.queue[:n], self.queue[n:]
            self.open_loop += 1
            stats.update(inference=False, patches_recomputed=0, patches_reused=0, lm_image_tokens=0)
        else:
            stats["interrupted"] = bool(self.queue)
            fired.update({cam: self.detector.detect(cam, f) for cam, f in frames.items() if cam not in fired})
            saliency = (self.sparsity.relevance == "saliency" and self.arm_mask is not None
                        and (reason == "event" or not self.weights))  # the episode's first, and each event
            chunk = self._infer(obs, fired, stats, saliency=saliency)
            for cam, frame in frames.items():
                encoded = self.encoder.encoded[cam].cpu().numpy().reshape(fired[cam].shape)
                self.detector.commit(cam, frame, encoded)
                if cam in self.arm_seen:  # a re-encoded patch's reference now holds the arm where it is now
                    self.arm_seen[cam] = np.where(encoded, arm_now[cam], self.arm_seen[cam])
            out, self.queue, self.open_loop = list(chunk[:n]), list(chunk[n:]), 0
        stats["ms"] = (time.perf_counter() - started) * 1e3
        self.step_stats.append(stats)
        return np.stack(out).astype(np.float32)

    def _arm_patches(self, obs: Observation) -> dict[str, np.ndarray]:
        """The trigger cameras' patches the arm covers at this observation's joints; each is added to the
        patches the arm has been on since their reference frame (`arm_seen`). Empty without an arm mask."""
        if self.arm_mask is None:
            return {}
        state = np.asarray(obs[OBS_STATE], dtype=np.float32)
        if self._arm_state is None or not np.array_equal(state, self._arm_state[0]):  # a still arm: as before
            self._arm_state = (state.copy(), self.arm_mask.patches(state, self.sparsity.arm_margin))
        masks = self._arm_state[1]
        for cam in self.trigger_cameras:
            seen = self.arm_seen.get(cam)
            self.arm_seen[cam] = masks[cam].copy() if seen is None else seen | masks[cam]
        return masks

    def _event_weight(self, fired: dict[str, np.ndarray]) -> float | None:
        """The relevance-weighted count of fired patches the arm does not explain, over the trigger cameras;
        None without an arm mask or before the first encoding (when every patch fires)."""
        if self.arm_mask is None or any(cam not in self.detector.reference for cam in self.trigger_cameras):
            return None
        total = 0.0
        for cam in self.trigger_cameras:
            off_arm = fired[cam] & ~self.arm_seen[cam]
            weights = self.weights.get(cam)
            total += float(off_arm.sum() if weights is None else weights[off_arm].sum())
        return total

    def _relevance(self, batch) -> None:
        """The trigger cameras' patch weights (mean 1) from the policy's action saliency on `batch`."""
        # deferred: the saliency's backward pass is only for `relevance: saliency`
        from vla.sparsity.relevance import action_saliency

        saliency = action_saliency(self.model, batch).cpu().numpy()
        cams = list(self.model.config.cameras)
        for cam in self.trigger_cameras:
            w = saliency[cams.index(cam)]
            self.weights[cam] = (w * w.size).astype(np.float32)

    @torch.no_grad()
    def _infer(self, obs: Observation, fired: dict[str, np.ndarray], stats: dict[str, Any],
               saliency: bool = False) -> np.ndarray:
        """One inference: the fired patches re-encoded, the rest reused; the chunk as float32. `saliency`:
        also take the patch weights anew from the policy's action saliency (`_relevance`)."""
        masks = None
        self.since_refresh += 1
        if self.sparsity.token_reuse and self.since_refresh < self.sparsity.refresh_every:
            masks = {cam: torch.from_numpy(m) for cam, m in fired.items()}
        else:  # bound the drift of cached keys/values of static patches
            self.since_refresh = 0
        batch = self.inputs(obs)
        if saliency:
            self._relevance(batch)
        cameras = list(self.model.config.cameras)
        budget = self.sparsity.token_budget
        lm_tokens = self.lm_image_tokens
        retrieve = self.sparsity.retrieve_tokens if self.decoding == "autoregressive" else None
        if not self.sparsity.token_reuse and budget is None and retrieve is None:
            # every patch encoded afresh: the model's own path, no cache to keep (the dense policy's inference)
            whole = torch.ones(self.encoder.num_patches, dtype=torch.bool)
            self.encoder.encoded = dict.fromkeys(cameras, whole)
            chunk = self.model.predict(batch, self.decoding)[0]
            stats.update(inference=True, lm_image_tokens=lm_tokens,
                         patches_recomputed=self.encoder.num_patches * len(cameras), patches_reused=0)
            return chunk.float().cpu().numpy().astype(np.float32)
        still = masks is not None and all(cam in self.encoder.cache and not m.any() for cam, m in masks.items())
        pixels = None if still else self.model.pixel_values(batch.images)  # nothing to encode: no pixels needed
        features, counts = self.encoder.encode(pixels, cameras, masks)
        if (budget is not None and budget < features.shape[1]) or retrieve is not None:
            keep = [coverage_select(f, budget or features.shape[1]) for f in features]
            chunk = self.model.predict(batch, self.decoding, image_features=features, keep=keep,
                                       retrieve=retrieve)[0]
            lm_tokens = len(keep[0]) * features.shape[0]
        else:
            chunk = self.model.predict(batch, self.decoding, image_features=features)[0]
        stats.update(inference=True, lm_image_tokens=lm_tokens, **counts)
        return chunk.float().cpu().numpy().astype(np.float32)
