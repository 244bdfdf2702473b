"""`vla train`: its flags and what it runs, for both objectives (the action head and the planner).

`vla.cli` imports this module, and with it torch and the trainers, only when `vla train` is parsed:
`add_arguments(parser)` declares the flags, `run(args) -> int` runs it.
"""

from __future__ import annotations

import argparse
import json
import sys

from sim import resolve_tasks
from vla.cli.policy_args import duration
from vla.evaluate.select import CheckpointSelector
from vla.evaluate.takeover import PolicyDetour
from vla.loading import DECODINGS
from vla.planner.train import train_planner
from vla.train.rollouts import SimDemos
from vla.train.stream import SimStream
from vla.train.trainer import TrainConfig, train


def add_arguments(tr: argparse.ArgumentParser) -> None:
    """The flags of `vla train`."""
    source = tr.add_mutually_exclusive_group(required=True)
    source.add_argument("--dataset", help="LeRobot v3.0 dataset directory (or hub repo id)")
    source.add_argument("--sim-tasks", default=None,
                        help="instead of a dataset: roll out the scripted expert on these sim tasks (as "
                             "`vla record --tasks` takes them) into memory, the episodes `vla record` would keep")
    tr.add_argument("--sim-episodes", type=int, default=100, help="with --sim-tasks: successful episodes per task")
    tr.add_argument("--sim-workers", type=int, default=None, help="with --sim-tasks: rollout processes (all cores)")
    tr.add_argument("--sim-detours", type=float, default=0.0,
                    help="with --sim-tasks: the share of episodes that are recovery demonstrations (the arm "
                         "driven off course first; the expert shows the way back), as `vla record --detours`")
    tr.add_argument("--detour-policy", default=None, metavar="POLICY",
                    help="with --sim-detours: the policy folder that drives those first ticks instead of the "
                         "expert's scripted detour, and the expert takes over from where it left the arm (a "
                         "DAgger round: fine-tune that policy on them with --init)")
    add_stream_arguments(tr)
    tr.add_argument("--select-episodes", type=int, default=0, metavar="N",
                    help="score every checkpoint on N closed-loop episodes per task while training goes on (a "
                         "worker on the spare core; seeds from 500,000, never an evaluation seed) and ship the "
                         "best in OUT (0: the newest)")
    tr.add_argument("--select-tasks", default=None,
                    help="--select-episodes: the sim tasks to score on (default: --sim-tasks)")
    tr.add_argument("--out", required=True, help="policy directory (checkpoints under OUT/checkpoints)")
    tr.add_argument("--model", default="tiny", help="configs/models/<name>.yaml, a YAML path, or a local HF VLM dir")
    tr.add_argument("--steps", type=int, default=5000)
    tr.add_argument("--time-budget", type=duration, default=None,
                    help="train this long instead of --steps (e.g. 2.5h, 40m, 900s): the steps that fit, "
                         "counted after the first 50, end the cosine schedule")
    tr.add_argument("--batch-size", type=int, default=32)
    tr.add_argument("--lr", type=float, default=5e-4)
    tr.add_argument("--warmup-steps", type=int, default=300)
    tr.add_argument("--seed", type=int, default=0)
    tr.add_argument("--chunk-size", type=int, default=None, help="override the model config's K")
    tr.add_argument("--n-action-steps", type=int, default=None,
                    help="override the model config's actions executed per inference (at most K)")
    tr.add_argument("--decoding", choices=DECODINGS, default=None)
    tr.add_argument("--action-head", choices=["bins", "continuous"], default=None,
                    help="override the model config's head: 256-way bins per value, or L1 regression (OFT)")
    tr.add_argument("--action-tokens", choices=["per_dim", "per_step"], default=None,
                    help="override the model config's action positions: one per value (K x D) or per step (K)")
    tr.add_argument("--gripper", choices=["quantile", "physical"], default=None,
                    help="override how the gripper is binned: like a joint, or absolute over its whole range")
    tr.add_argument("--vision-stem", choices=["patch", "conv"], default=None,
                    help="override the tiny vision tower's stem: one patch projection, or 3x3 stride-2 convolutions "
                         "down to the same patch grid")
    tr.add_argument("--aux-targets", default=None,
                    help="comma-separated per-frame features regressed during training only, never decoded "
                         "(e.g. observation.environment_state: object positions as grounding targets)")
    tr.add_argument("--state-keys", default=None,
                    help="comma-separated observation keys that make up the state tokens (observation.state "
                         "first); adding observation.environment_state is the oracle-perception diagnostic")
    tr.add_argument("--parallel-fraction", type=float, default=0.5,
                    help="share of each batch that trains parallel decoding; the rest trains autoregressive "
                         "(0.5: one checkpoint serves both; 1: parallel only)")
    tr.add_argument("--label-sigma", type=float, default=0.0,
                    help="Gaussian soft action targets this many bins wide (0: one-hot cross-entropy)")
    tr.add_argument("--lora", action="store_true", help="LoRA adapters (peft) instead of full fine-tuning")
    tr.add_argument("--checkpoint-every", type=int, default=1000)
    tr.add_argument("--instruction-key", default="task", help="per-frame text to condition on (task or subtask)")
    tr.add_argument("--resume", action="store_true", help="continue from the newest checkpoint in --out")
    tr.add_argument("--objective", choices=["action", "planner"], default="action",
                    help="action: the action head (default); planner: scene description, plans, world model, critic")
    tr.add_argument("--init", default=None,
                    help="the VLA checkpoint to start from: planner: its backbone and tokenizer; action: the whole "
                         "policy, fine-tuned (its config is kept: no --model or head flags)")
    tr.add_argument("--quiet", action="store_true")


def add_stream_arguments(parser: argparse.ArgumentParser, needs: str = "--sim-tasks") -> None:
    """The flags of a streamed sim source (`vla train --sim-tasks ... --stream`, `vla bench oracle-mlp`);
    `needs`: the flag that asks for sim episodes in that command."""
    parser.add_argument("--stream", action="store_true",
                        help=f"with {needs}: keep rolling out the expert on new seeds while training and train "
                             "on the newest frames (--sim-episodes per task roll out first: statistics, "
                             "vocabulary, the first frames); a resumed run streams its seeds afresh")
    parser.add_argument("--stream-buffer", type=int, default=60_000, metavar="FRAMES",
                        help="--stream: frames held; training waits for the workers below half of it. Measured "
                             "on the oracle (docs/BENCHMARKS.md): a buffer that holds most of the stream matches "
                             "a fixed set, a small one falls behind. Two 128 px cameras: about 100 kB a frame")
    parser.add_argument("--stream-reuse", type=int, default=4, metavar="N",
                        help="--stream: times each streamed frame is drawn before its slot takes a new one")
    parser.add_argument("--stream-workers", type=int, default=1, help="--stream: rollout processes")


def sim_source(args: argparse.Namespace, task_ids: list[str], episodes: int, images: bool = True):
    """The in-memory source the flags ask for: `SimStream` with --stream, else `SimDemos`."""
    if args.stream:
        return SimStream(task_ids, episodes, workers=args.sim_workers, progress=not args.quiet, images=images,
                         capacity=args.stream_buffer, reuse=args.stream_reuse, stream_workers=args.stream_workers)
    detour = getattr(args, "detour_policy", None)
    return SimDemos(task_ids, episodes, workers=args.sim_workers, progress=not args.quiet, images=images,
                    detours=getattr(args, "sim_detours", 0.0), detour=PolicyDetour(detour) if detour else None)


def planner_training_error(args: argparse.Namespace) -> str | None:
    """Why `vla train --objective planner` cannot run with these flags (None when it can)."""
    ignored = [flag for flag, given in (
        ("--model", args.model != "tiny"), ("--lora", args.lora), ("--chunk-size", args.chunk_size),
        ("--n-action-steps", args.n_action_steps), ("--decoding", args.decoding),
        ("--parallel-fraction", args.parallel_fraction != 0.5), ("--label-sigma", args.label_sigma),
        ("--action-head", args.action_head), ("--action-tokens", args.action_tokens), ("--gripper", args.gripper),
        ("--vision-stem", args.vision_stem), ("--state-keys", args.state_keys), ("--aux-targets", args.aux_targets),
        ("--sim-tasks", args.sim_tasks), ("--stream", args.stream), ("--select-episodes", args.select_episodes),
    ) if given]
    if ignored:
        return (f"{', '.join(ignored)} apply to the action objective only; "
                "the planner takes its backbone from --init")
    if not args.init:
        return ("needs --init: the VLA checkpoint whose backbone learns to plan "
                "(e.g. policies/tiny_sim_single)")
    return None


def run(args: argparse.Namespace) -> int:
    """Train the objective asked for and print its summary; 2 when planner flags do not fit.

    Under `accelerate launch` only the main process gets a summary (the others get `{}`), so only
    it prints one.
    """
    if args.objective == "planner" and (error := planner_training_error(args)):  # before any work
        print(f"vla train --objective planner: {error}", file=sys.stderr)
        return 2
    if args.sim_detours and not args.sim_tasks:
        print("vla train: --sim-detours applies to episodes rolled out with --sim-tasks; record a dataset with "
              "`vla record --detours` instead", file=sys.stderr)
        return 2
    if args.detour_policy and not args.sim_detours:
        print(f"vla train: --detour-policy {args.detour_policy} drives the --sim-detours share of the episodes; "
              "give --sim-detours (e.g. 0.5)", file=sys.stderr)
        return 2
    if args.stream and (not args.sim_tasks or args.sim_detours):
        print("vla train: --stream streams expert episodes of --sim-tasks (without --sim-detours); a recorded "
              "--dataset is read as it is", file=sys.stderr)
        return 2
    if args.select_episodes < 0 or (args.select_episodes and not (args.select_tasks or args.sim_tasks)):
        print("vla train: --select-episodes N (N >= 0) scores checkpoints on sim tasks: give --select-tasks "
              "(or train on --sim-tasks)", file=sys.stderr)
        return 2
    if args.objective == "action" and args.init and args.model != "tiny":
        print(f"vla train: --init {args.init} fine-tunes that policy with its own model; drop --model {args.model}",
              file=sys.stderr)
        return 2

    cfg = TrainConfig(steps=args.steps, batch_size=args.batch_size, lr=args.lr, seed=args.seed, lora=args.lora,
                      checkpoint_every=args.checkpoint_every, instruction_key=args.instruction_key,
                      warmup_steps=args.warmup_steps if args.time_budget else min(args.warmup_steps,
                                                                                  max(1, args.steps // 10)),
                      time_budget_s=args.time_budget,
                      parallel_fraction=args.parallel_fraction, label_sigma=args.label_sigma)
    if args.objective == "planner":
        summary = train_planner(args.dataset, args.out, args.init, cfg, resume=args.resume, progress=not args.quiet)
        keys = ("steps", "wall_time_s", "episodes", "parameters")
    else:
        overrides = {k: v for k, v in (("chunk_size", args.chunk_size), ("n_action_steps", args.n_action_steps),
                                       ("decoding", args.decoding), ("action_head", args.action_head),
                                       ("action_tokens", args.action_tokens), ("gripper", args.gripper),
                                       ("vision_stem", args.vision_stem),
                                       ("state_keys", args.state_keys and args.state_keys.split(",")),
                                       ("aux_targets", args.aux_targets and args.aux_targets.split(","))) if v}
        dataset = args.dataset
        if args.sim_tasks:
            try:
                dataset = sim_source(args, resolve_tasks(args.sim_tasks), args.sim_episodes)
            except FileNotFoundError as error:  # --detour-policy that is not a policy folder, before any rollout
                print(f"vla train: {error}", file=sys.stderr)
                return 2
        selector = None
        if args.select_episodes:
            selector = CheckpointSelector(resolve_tasks(args.select_tasks or args.sim_tasks), args.select_episodes)
        summary = train(dataset, args.out, args.model, cfg, resume=args.resume, progress=not args.quiet,
                        model_overrides=overrides, init=args.init, selector=selector)
        keys = ("steps", "wall_time_s", "frames", "parameters")
    if summary:
        print(json.dumps({k: summary[k] for k in keys}, indent=2))
    return 0
