"""From a `--policy` name and its flags to a policy factory: the registry that `vla eval`, `vla serve`
and the benchmarks share.

A policy name is one of
- `scripted`: the privileged scripted expert (reads the simulator's state; sim only);
- `scripted-skills`: the scripted skills, driven by the subtask each observation names;
- a LeRobot checkpoint directory (ACT, Diffusion, ...: `type` in its config.json), run through its
  own processors;
- a VLA checkpoint directory, dense or event-sparse (`--sparse`).
A factory takes the env (None when serving) and returns a Policy; `with_planner` wraps it in the
planner's loop when `--planner` is given. The flags these read are declared here too, so that a
flag and its meaning stay in one place.
"""

from __future__ import annotations

import argparse
from collections.abc import Callable
from pathlib import Path
from typing import Any

SHIPPED_POLICY = Path(__file__).resolve().parent.parent / "policies" / "tiny_sim_single"
POLICY_KINDS = "'scripted', 'scripted-skills', a LeRobot checkpoint directory or a VLA checkpoint directory"
DECODINGS = ("parallel", "autoregressive")

PolicyFactory = Callable[[Any], Any]


def duration(text: str) -> float:
    """Seconds from '2.5h', '40m', '900s' or '900' (the `--time-budget` type of `vla train` and `vla bench
    peers`; here beside the other flags the commands and the benchmarks share)."""
    units = {"h": 3600.0, "m": 60.0, "s": 1.0}
    text = text.strip().lower()
    scale = units.get(text[-1:], None)
    try:
        seconds = float(text[:-1] if scale else text) * (scale or 1.0)
    except ValueError:
        raise argparse.ArgumentTypeError(f"{text!r} is not a duration; expected e.g. 2.5h, 40m, 900s") from None
    if seconds <= 0:
        raise argparse.ArgumentTypeError(f"{text!r}: a time budget must be positive")
    return seconds


def add_policy_arguments(parser: argparse.ArgumentParser, default: str | None = "scripted", required: bool = False,
                         policy_help: str = POLICY_KINDS, robot_help: str = "robot config name or YAML path") -> None:
    """`--policy`, `--decoding`, `--robot` and the event-sparsity flags: what `policy_from_args` reads."""
    parser.add_argument("--policy", default=default, required=required, help=policy_help)
    parser.add_argument("--decoding", choices=DECODINGS, default=None,
                        help="VLA decoding mode (default: the checkpoint's)")
    parser.add_argument("--n-action-steps", type=int, default=None,
                        help="VLA: actions executed per inference, 1..chunk size (default: the checkpoint's)")
    parser.add_argument("--robot", default=None, help=robot_help + " (default: the task suite's robot)")
    add_sparsity_arguments(parser)


def add_sparsity_arguments(parser: argparse.ArgumentParser) -> None:
    """The event-sparsity flags that `sparsity_options` reads."""
    parser.add_argument("--sparse", action="store_true",
                        help="event-triggered visual sparsity: infer on change, re-encode changed patches only")
    parser.add_argument("--sparsity-config", default=None, help="YAML (default: configs/sparsity/default.yaml)")
    parser.add_argument("--trigger-threshold", type=float, default=None,
                        help="re-infer when this fraction of the trigger cameras' patches changed")
    parser.add_argument("--token-budget", type=int, default=None,
                        help="image tokens per camera the language model keeps (coverage-based pruning)")


def add_planner_arguments(parser: argparse.ArgumentParser) -> None:
    """The planner flags that `with_planner` reads."""
    parser.add_argument("--planner", default=None,
                        help="a planner checkpoint: the goal becomes subtasks for the policy (multi-step tasks)")
    parser.add_argument("--system", choices=["system1", "system2"], default="system1",
                        help="planner: one greedy plan, or candidates scored by world model and critic")
    parser.add_argument("--candidates", type=int, default=4, help="planner: System-2 candidate plans")
    parser.add_argument("--no-replan", action="store_true",
                        help="planner: follow the first plan whatever happens (a first plan that failed is still "
                             "retried)")


def sparsity_options(args: argparse.Namespace) -> tuple[Any, tuple[str, ...]] | None:
    """(event-sparsity config, the robot's cameras not on the arm) the flags ask for; None for dense."""
    if not getattr(args, "sparse", False):
        return None
    from vla.robot import load_robot_config
    from vla.sparsity.policy import load_sparsity_config

    config = load_sparsity_config(args.sparsity_config, trigger_threshold=args.trigger_threshold,
                                  token_budget=args.token_budget)
    robot = load_robot_config(args.robot) if args.robot else load_robot_config()  # vla.robot's default robot
    return config, robot.world_cameras


def policy_factory(name: str, decoding: str | None = None, sparsity=None,
                   n_action_steps: int | None = None) -> PolicyFactory:
    """Policy name -> factory(env) -> Policy; `sparsity` is what `sparsity_options` returns (None: dense);
    `n_action_steps` overrides a dense VLA checkpoint's actions executed per inference."""
    if n_action_steps is not None and (sparsity is not None or name in ("scripted", "scripted-skills")):
        raise ValueError("--n-action-steps applies to dense VLA policies (the event-sparse schedule is its "
                         "sparsity config's max_open_loop)")
    if name == "scripted-skills":
        from sim.tabletop.experts import SkillExpert

        return SkillExpert
    if name == "scripted":
        if sparsity is not None:
            raise ValueError("--sparse applies to VLA policies, not to the scripted expert")
        from sim import scripted_expert

        return scripted_expert
    if not Path(name).is_dir():
        raise ValueError(f"unknown policy {name!r}; expected {POLICY_KINDS} (no such directory: check the path)")
    if (Path(name) / "planner.json").is_file():  # its action head is not what it was trained for: it would score 0
        raise ValueError(f"{name} is a planner checkpoint (it has planner.json): give it as --planner {name}, with an "
                         "action policy as --policy (e.g. --policy policies/tiny_sim_single)")
    from vla.peers.lerobot_policy import is_lerobot_checkpoint

    if is_lerobot_checkpoint(name):
        if sparsity is not None or decoding is not None or n_action_steps is not None:
            raise ValueError("--sparse, --decoding and --n-action-steps apply to VLA policies, not to LeRobot "
                             "checkpoints")
        from vla.peers import LeRobotPolicy

        peer = LeRobotPolicy.from_pretrained(name)
        return lambda env: peer
    return _vla_factory(name, decoding, sparsity, n_action_steps)


def _vla_factory(name: str, decoding: str | None, sparsity, n_action_steps: int | None = None) -> PolicyFactory:
    from vla.policy import VLAPolicy

    # The event-sparse path runs the eager fp32 model; the static GPU path is for dense policies.
    policy = VLAPolicy.from_pretrained(name, decoding=decoding, n_action_steps=n_action_steps,
                                       fast=False if sparsity is not None else None)
    if sparsity is not None:
        from vla.sparsity.policy import SparseVLAPolicy

        config, world_cameras = sparsity
        policy = SparseVLAPolicy(policy.model, config, decoding=decoding, name=f"{Path(name).name}-sparse",
                                 world_cameras=world_cameras)
    return lambda env: policy


def with_planner(factory: PolicyFactory, args: argparse.Namespace) -> PolicyFactory:
    """The policy factory wrapped in the planner's loop when --planner is given; else the factory itself."""
    if not getattr(args, "planner", None):
        return factory
    from vla.planner.planner import Planner
    from vla.planner.policy import PlannedPolicy

    planner = Planner.from_pretrained(args.planner, system=args.system, candidates=args.candidates, seed=args.seed)
    return lambda env: PlannedPolicy(planner, factory(env), replan=not args.no_replan)


def served_policy(args: argparse.Namespace):
    """The one policy `vla serve` hosts: a checkpoint, dense or event-sparse (no env, so no scripted expert)."""
    if args.policy in ("scripted", "scripted-skills"):
        raise ValueError(f"--policy {args.policy}: the scripted expert reads the simulator's private state and "
                         "cannot be served; serve a trained policy directory (e.g. policies/tiny_sim_single)")
    return policy_factory(args.policy, args.decoding, sparsity_options(args), args.n_action_steps)(None)


def policy_from_args(args: argparse.Namespace) -> PolicyFactory:
    """`--policy`, `--decoding`, `--n-action-steps`, the sparsity and planner flags -> one policy factory."""
    return with_planner(policy_factory(args.policy, args.decoding, sparsity_options(args), args.n_action_steps),
                        args)

