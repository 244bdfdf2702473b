"""`vla bench sparsity`: dense vs event-sparse inference in closed loop, same policy, seeds and run.

Both arms are asked for an action at every control step (execute one action, re-plan: the
regime of OpenVLA, VLA-Cache and EfficientVLA). The dense arm runs the whole model every step.
The sparse arm runs the event detector and, depending on what changed, serves the next action
of its last chunk (no inference) or re-encodes only the changed patches and runs the model.

Reported per arm: success, vision-tower tokens encoded per control step, FLOPs per control step,
median/p95 wall time per control step (policy code only, excluding the simulator). FLOPs come
from torch's FlopCounterMode on one dense step, split into vision tower and the rest; a sparse
step's vision FLOPs scale with the patches it re-encodes (every per-patch cost in the tower is
linear in the number of query patches; the patch-embedding convolution, which always runs on
the whole frame, is counted in full).
"""

from __future__ import annotations

import platform
import time
from pathlib import Path
from typing import Any

import numpy as np
import torch
from torch.utils.flop_counter import FlopCounterMode
from tqdm import tqdm

import sim
from sim.tabletop.tasks import free_spot
from vla.control import SafetyFilter
from vla.evaluate import EpisodeResult, rollout, summarize
from vla.model.vla import Batch, VLAModel
from vla.policy import VLAPolicy
from vla.robot import load_robot_config
from vla.sparsity.policy import SparseVLAPolicy, SparsityConfig, load_arm_mask, load_sparsity_config
from vla.types import OBS_STATE


class _TimedDense(VLAPolicy):
    """The dense policy with the same per-step bookkeeping as the sparse one. With
    `n_action_steps` > 1 it is the fixed schedule: one inference, then that many steps from it."""

    def __init__(self, model: VLAModel, n_action_steps: int = 1):
        super().__init__(model, n_action_steps=1, name="dense", fast=False)
        self.schedule = n_action_steps
        self.patches = model.vision_size // model.hf.config.vision_config.patch_size
        self.step_stats: list[dict[str, Any]] = []
        self.queue: list[np.ndarray] = []

    def reset(self) -> None:
        self.queue = []

    def predict_chunk(self, obs):
        started = time.perf_counter()
        ran = not self.queue
        if ran:
            self.n_action_steps = self.schedule
            self.queue = list(super().predict_chunk(obs))
        out = self.queue.pop(0)[None]
        n = self.patches**2 * len(self.model.config.cameras) if ran else 0
        lm = self.model.layout.tokens_per_image * len(self.model.config.cameras) if ran else 0
        self.step_stats.append({"inference": ran, "patches_recomputed": n, "patches_reused": 0, "lm_image_tokens": lm,
                                "ms": (time.perf_counter() - started) * 1e3})
        return out


def _flops(model: VLAModel) -> dict[str, float]:
    """FLOPs of one dense step: total, vision-tower layers, patch embedding."""
    cfg = model.config
    S = model.vision_size
    batch = Batch(torch.rand(1, len(cfg.cameras), 3, S, S), ["pick up the red cube"], torch.zeros(1, cfg.state_dim))
    with FlopCounterMode(display=False) as total:
        model.decode(batch)
    vision = model.hf.model.vision_model
    pixels = model.pixel_values(batch.images).flatten(0, 1)
    with FlopCounterMode(display=False) as tower:
        vision(pixel_values=pixels)
    with FlopCounterMode(display=False) as embed:
        vision.embeddings.patch_embedding(pixels)
    return {"total": float(total.get_total_flops()), "tower": float(tower.get_total_flops()),
            "embedding": float(embed.get_total_flops())}


def _score_episodes(name: str, policy, tasks: list[str], episodes: int, seed: int, progress: bool,
              hook=None, after_episode=None) -> tuple[list[EpisodeResult], dict[str, Any]]:
    """Closed-loop episodes (seeds seed, seed+1, ... per task) through `rollout`; `hook(seed)` makes
    each episode's `intervene`, `after_episode()` runs after each. The results and the per-task summaries."""
    results, per_task = [], {}
    bar = tqdm(total=episodes * len(tasks), desc=name, unit="ep", disable=not progress)
    for task_id in tasks:
        env = sim.make_env(task_id)
        task_results = []
        for i in range(episodes):
            task_results.append(rollout(env, policy, seed + i, intervene=hook(seed + i) if hook else None))
            if after_episode is not None:
                after_episode()
            bar.update()
        env.close()
        per_task[task_id] = summarize(task_results)
        results += task_results
    bar.close()
    return results, per_task


def _success(results: list[EpisodeResult], per_task: dict[str, Any]) -> dict[str, Any]:
    overall = summarize(results)
    return {"success_rate": overall["success_rate"], "successes": overall["successes"],
            "episodes": overall["episodes"], "ci95": overall["ci95"], "tasks": per_task}


def _steps(stats: list[dict[str, Any]]) -> dict[str, Any]:
    """What a policy's `step_stats` say per control step: inference rate, vision tokens, time."""
    ms = np.array([s["ms"] for s in stats])
    return {"control_steps": len(stats),
            "inference_fraction": round(float(np.mean([s["inference"] for s in stats])), 4),
            "visual_tokens_per_step": round(float(np.mean([s["patches_recomputed"] for s in stats])), 2),
            "median_step_ms": round(float(np.median(ms)), 3), "p95_step_ms": round(float(np.percentile(ms, 95)), 3),
            "mean_step_ms": round(float(ms.mean()), 3)}


def _arm(name: str, policy, tasks: list[str], episodes: int, seed: int, flops: dict[str, float],
         patches_total: int, progress: bool) -> dict[str, Any]:
    results, per_task = _score_episodes(f"sparsity {name}", policy, tasks, episodes, seed, progress)
    stats = policy.step_stats
    encoded = np.array([s["patches_recomputed"] for s in stats], dtype=float)
    ran = np.array([s["inference"] for s in stats])
    layers = flops["tower"] - flops["embedding"]
    step_flops = np.where(ran, flops["total"] - layers * (1 - encoded / patches_total), 0.0)
    return {**_success(results, per_task), **_steps(list(stats)),
            "lm_image_tokens_per_step": round(float(np.mean([s["lm_image_tokens"] for s in stats])), 2),
            "gflops_per_step": round(float(step_flops.mean()) / 1e9, 4)}


def _still(policy, tasks: list[str], seed: int, steps: int) -> dict[str, Any]:
    """The policy asked for an action at every control step of a scene where nothing moves: the arm is
    held where it started (`SafetyFilter.hold_action`) and the policy's actions are not executed."""
    first = len(policy.step_stats)
    for task_id in tasks:
        env = sim.make_env(task_id)
        obs, _ = env.reset(seed=seed)
        safety = SafetyFilter(env.unwrapped.robot)
        hold = safety.hold_action(safety.hold_state(obs[OBS_STATE])[0], None)
        policy.reset()
        for _ in range(steps):
            policy.predict_chunk(obs)
            obs, *_ = env.step(hold)
        env.close()
    return _steps(list(policy.step_stats)[first:])


def _perturbed(name: str, policy, tasks: list[str], episodes: int, seed: int, after: int,
               progress: bool, move: bool = True, replan: bool = False) -> dict[str, Any]:
    """Closed loop, with the instruction's cube moved to a free spot on the table `after` control
    steps into each episode (mid-chunk: the fixed schedule then executes stale actions until its
    next inference). Reports success and the reaction: control steps from the move to the first
    inference that sees it. `replan`: the policy re-plans at that step, as a trigger that always
    sees the move would make it (queued actions dropped); with `move` False nothing moves, and the
    arm measures what re-planning off the schedule costs by itself."""
    moved: dict[str, int] = {}  # this episode's index into step_stats of the first step after the move
    reactions, fractions = [], []

    def hook(episode_seed: int):
        rng = np.random.default_rng(episode_seed)
        moved.clear()

        def intervene(steps: int, env, loop) -> dict | None:
            if steps != after:
                return None
            obs = None
            if move:
                color = env.unwrapped.episode.subtasks[0].target
                obs = env.unwrapped.displace(color, free_spot(env.unwrapped.scene, color, rng))
            if replan:  # the chunk being executed is dropped: the next step infers
                policy.reset()
                loop.executor.drop_queue()
            moved["at"] = len(policy.step_stats)
            return obs
        return intervene

    def measure() -> None:  # after each episode: its steps since the move
        if "at" in moved:
            after_move = list(policy.step_stats)[moved["at"]:]
            ran = [k for k, s in enumerate(after_move) if s["inference"]]
            if ran:
                reactions.append(ran[0])
            if "changed_fraction" in after_move[0]:
                fractions.append(after_move[0]["changed_fraction"])

    results, per_task = _score_episodes(f"perturbed {name}", policy, tasks, episodes, seed, progress, hook, measure)
    out = {**_success(results, per_task), "perturbed_episodes": len(reactions),
           "mean_reaction_steps": round(float(np.mean(reactions)), 2) if reactions else None,
           "median_reaction_steps": float(np.median(reactions)) if reactions else None,
           "immediate_reactions": int(sum(r == 0 for r in reactions)),
           "mean_step_ms": round(float(np.mean([s["ms"] for s in policy.step_stats])), 3)}
    if fractions:
        out["changed_fraction_at_move"] = {"mean": round(float(np.mean(fractions)), 4),
                                           "max": round(float(np.max(fractions)), 4)}
    return out


def bench_sparsity(policy_dir: str | Path, tasks: list[str], episodes: int = 20, seed: int = 0,
                   sweep: tuple[float, ...] = (0.0, 0.05, 0.1, 0.2, 0.3, 0.5), sweep_episodes: int = 10,
                   config: str | Path | None = None, plot: str | Path | None = None,
                   progress: bool = True, still_steps: int = 100, perturb_after: int = 12,
                   perturb_episodes: int | None = None) -> dict[str, Any]:
    model = VLAModel.from_pretrained(policy_dir, device="cpu")
    sparse_cfg = load_sparsity_config(config)
    world = load_robot_config().world_cameras  # the sim's robot: its fixed cameras trigger inference
    arm = load_arm_mask(sparse_cfg, policy_dir)  # the event rule's arm discount (None: the share rule alone)

    def sparse_policy(cfg: SparsityConfig = sparse_cfg, mask=arm) -> SparseVLAPolicy:
        return SparseVLAPolicy(model, cfg, world_cameras=world, arm_mask=mask)

    grid = model.vision_size // model.hf.config.vision_config.patch_size
    patches_total = grid * grid * len(model.config.cameras)
    flops = _flops(model)
    started = time.perf_counter()
    report: dict[str, Any] = {
        "policy": str(policy_dir), "tasks": tasks, "episodes_per_task": episodes, "seed": seed,
        "machine": f"{platform.machine()}, {torch.get_num_threads()} torch threads, "
                   f"{'cuda' if torch.cuda.is_available() else 'cpu'}",
        "regime": "one action executed per control step; the dense arm infers at every step",
        "sparsity_config": sparse_cfg.__dict__, "arm_mask_loaded": arm is not None,
        "dense_gflops": round(flops["total"] / 1e9, 4),
        "vision_tower_gflops": round(flops["tower"] / 1e9, 4),
    }
    report["dense"] = _arm("dense", _TimedDense(model), tasks, episodes, seed, flops, patches_total, progress)
    # Context: the checkpoint's own fixed schedule (infer, then execute `n_action_steps` actions).
    report["fixed_schedule"] = _arm(f"fixed every {model.config.n_action_steps}",
                                    _TimedDense(model, model.config.n_action_steps), tasks, episodes, seed,
                                    flops, patches_total, progress)
    report["sparse"] = _arm("sparse", sparse_policy(), tasks, episodes, seed, flops, patches_total, progress)
    if arm is not None:  # the same trigger without the arm discount: the share of fired patches alone
        report["sparse_share_only"] = _arm("sparse, share only", sparse_policy(mask=None), tasks, episodes, seed,
                                           flops, patches_total, progress)
    # The same, with query-agnostic pruning: the language model keeps half of each camera's image tokens.
    half = max(1, model.layout.tokens_per_image // 2)
    pruned_cfg = SparsityConfig(**{**sparse_cfg.__dict__, "token_budget": half})
    pruned = sparse_policy(pruned_cfg)
    report["sparse_pruned"] = _arm(f"sparse+budget {half}", pruned, tasks, episodes, seed,
                                   flops, patches_total, progress)
    report["sparse_pruned"]["token_budget_per_camera"] = half
    d, s = report["dense"], report["sparse"]
    report["token_reduction"] = round(d["visual_tokens_per_step"] / max(s["visual_tokens_per_step"], 1e-9), 3)
    report["speedup"] = round(d["median_step_ms"] / max(s["median_step_ms"], 1e-9), 3)
    report["mean_speedup"] = round(d["mean_step_ms"] / max(s["mean_step_ms"], 1e-9), 3)
    report["flops_reduction"] = round(d["gflops_per_step"] / max(s["gflops_per_step"], 1e-9), 3)
    report["notes"] = ("median_step_ms is over all control steps, most of which run no inference in the sparse "
                       "arm; mean_speedup (mean policy time per step) is the compute ratio. The trigger-0 sweep "
                       "point re-encodes only changed patches but infers at every step: token reuse alone.")
    # A still scene (the arm held, nothing moving): what the event check costs when there are no events.
    every = model.config.n_action_steps
    report["still_scene"] = {
        "steps_per_task": still_steps, "seed": seed,
        "fixed_schedule": _still(_TimedDense(model, every), tasks, seed, still_steps),
        "sparse": _still(sparse_policy(), tasks, seed, still_steps)}
    # The instruction's cube moved mid-chunk: what reacting to events buys.
    n = episodes if perturb_episodes is None else perturb_episodes
    report["perturbed"] = {
        "after_steps": perturb_after, "episodes_per_task": n,
        "note": f"the fixed schedule infers at steps 0, {every}, {2 * every}, ...: after a move at step "
                f"{perturb_after} it executes {-perturb_after % every} stale actions",
        "fixed_schedule": _perturbed(f"fixed every {every}", _TimedDense(model, every), tasks, n, seed,
                                     perturb_after, progress),
        # the best a trigger could do: re-plan at the move itself
        "fixed_replan_at_move": _perturbed("fixed, re-planned at the move", _TimedDense(model, every), tasks, n,
                                           seed, perturb_after, progress, replan=True),
        # and what that off-schedule re-plan costs when nothing moved
        "fixed_replan_unmoved": _perturbed("fixed, re-planned, unmoved", _TimedDense(model, every), tasks, n,
                                           seed, perturb_after, progress, move=False, replan=True),
        "sparse": _perturbed("sparse", sparse_policy(), tasks, n, seed, perturb_after, progress),
        **({"sparse_share_only": _perturbed("sparse, share only", sparse_policy(mask=None), tasks, n, seed,
                                            perturb_after, progress)} if arm is not None else {})} if n > 0 else None
    points = []
    for threshold in sweep if sweep_episodes > 0 else ():  # --sweep-episodes 0 skips the sweep
        cfg = SparsityConfig(**{**sparse_cfg.__dict__, "trigger_threshold": threshold})
        point = _arm(f"trigger={threshold}", sparse_policy(cfg), tasks, sweep_episodes, seed, flops,
                     patches_total, progress)
        dense_ms = d["median_step_ms"]
        points.append({"trigger_threshold": threshold, "success_rate": point["success_rate"],
                       "episodes": point["episodes"],
                       "speedup": round(dense_ms / max(point["median_step_ms"], 1e-9), 3),
                       "mean_speedup": round(d["mean_step_ms"] / max(point["mean_step_ms"], 1e-9), 3),
                       "inference_fraction": point["inference_fraction"],
                       "visual_tokens_per_step": point["visual_tokens_per_step"]})
    report["sweep"] = points
    report["wall_time_s"] = round(time.perf_counter() - started, 1)
    if plot and points:
        _plot(points, d["success_rate"], Path(plot))
        report["plot"] = str(plot)
    return report


def _plot(points: list[dict], dense_success: float, path: Path) -> None:
    # deferred: matplotlib is a dev extra, for the plot only; the Agg backend is chosen before pyplot loads
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    fig, ax = plt.subplots(figsize=(5, 3.5), dpi=120)
    xs = [p["mean_speedup"] for p in points]
    ys = [p["success_rate"] * 100 for p in points]
    ax.plot(xs, ys, "o-", label="event-sparse")
    for p, x, y in zip(points, xs, ys, strict=True):
        ax.annotate(f"{p['trigger_threshold']:g}", (x, y), textcoords="offset points", xytext=(4, 4), fontsize=8)
    ax.axhline(dense_success * 100, color="grey", ls="--", label="dense")
    ax.set_xlabel("speed-up over dense (mean policy time per control step)")
    ax.set_ylabel("success (%)")
    ax.set_title("trigger threshold sweep")
    ax.legend(fontsize=8)
    fig.tight_layout()
    path.parent.mkdir(parents=True, exist_ok=True)
    fig.savefig(path)
    plt.close(fig)
