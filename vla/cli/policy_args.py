"""The flags the commands and the benchmarks share, and the functions that read them: `--policy` and its
decoding, event-sparsity and planner flags (to a policy factory of vla.loading), and the `duration` type.

A flag and its meaning stay in one place: each `add_*_arguments` here declares what the reader below it takes.
"""

from __future__ import annotations

import argparse

from vla.loading import (
    DECODINGS,
    POLICY_KINDS,
    PolicyFactory,
    load_sparsity,
    planned,
    policy_factory,
    servable_policy,
)


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


def sparsity_options(args: argparse.Namespace):
    """(event-sparsity config, the robot's cameras not on the arm) the flags ask for; None for dense."""
    if not getattr(args, "sparse", False):
        return None
    return load_sparsity(args.sparsity_config, args.trigger_threshold, args.token_budget, args.robot)


def with_planner(factory: PolicyFactory, args: argparse.Namespace) -> PolicyFactory:
    """The policy factory wrapped in the planner's loop when --planner is given; else the factory itself."""
    if not getattr(args, "planner", None):
        return factory
    return planned(factory, args.planner, system=args.system, candidates=args.candidates, seed=args.seed,
                   replan=not args.no_replan)


def served_policy(args: argparse.Namespace):
    """The one policy `vla serve` hosts, from its flags (a checkpoint; no scripted expert)."""
    return servable_policy(args.policy, args.decoding, sparsity_options(args), args.n_action_steps)


def policy_from_args(args: argparse.Namespace) -> PolicyFactory:
    """`--policy`, `--decoding`, `--n-action-steps`, the sparsity and planner flags -> one policy factory."""
    return with_planner(policy_factory(args.policy, args.decoding, sparsity_options(args), args.n_action_steps),
                        args)
