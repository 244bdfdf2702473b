"""From a `--policy` name and its flags to a policy factory: the registry that `vla eval`, `vla serve`
and the benchmarks share.

A policy name is one of
- `scripted`: the privileged scripted expert (reads the simulator's state; sim only);
- `scripted-skills`: the scripted skills, driven by the subtask each observation names;
- a LeRobot checkpoint directory (ACT, Diffusion, ...: `type` in its config.json), run through its
  own processors;
- a VLA checkpoint directory, dense or event-sparse (`--sparse`).
A factory takes the env (None when serving) and returns a Policy; `planned` wraps it in a planner's
loop. Everything here takes explicit parameters: the flags that name them, and the functions that read
those flags, are `vla.cli.policy_args`'s.
"""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path
from typing import Any

from vla.planner.policy import PlannedPolicy
from vla.robot import load_robot_config

SHIPPED_POLICY = Path(__file__).resolve().parent.parent / "policies" / "tiny_sim_single"
POLICY_KINDS = "'scripted', 'scripted-skills', a LeRobot checkpoint directory or a VLA checkpoint directory"
DECODINGS = ("parallel", "autoregressive")

PolicyFactory = Callable[[Any], Any]


def load_sparsity(config: str | Path | None = None, trigger_threshold: float | None = None,
                  token_budget: int | None = None, robot: str | None = None) -> tuple[Any, tuple[str, ...]]:
    """(event-sparsity config, the robot's cameras not on the arm): what `policy_factory` takes as `sparsity`.
    `config`: a YAML (default: configs/sparsity/default.yaml); `robot`: a robot config (default: vla.robot's)."""
    # deferred: torch; every `vla` command imports vla.loading (`vla client` stays torch-free)
    from vla.sparsity.policy import load_sparsity_config

    sparsity = load_sparsity_config(config, trigger_threshold=trigger_threshold, token_budget=token_budget)
    return sparsity, (load_robot_config(robot) if robot else load_robot_config()).world_cameras


def policy_factory(name: str, decoding: str | None = None, sparsity=None,
                   n_action_steps: int | None = None) -> PolicyFactory:
    """Policy name -> factory(env) -> Policy; `sparsity` is what `load_sparsity` returns (None: dense);
    `n_action_steps` overrides a dense VLA checkpoint's actions executed per inference."""
    if n_action_steps is not None and (sparsity is not None or name in ("scripted", "scripted-skills")):
        raise ValueError("--n-action-steps applies to dense VLA policies (the event-sparse schedule is its "
                         "sparsity config's max_open_loop)")
    if name == "scripted-skills":
        # deferred: sim is the optional sim extra; `vla serve` and `vla client` run without it
        from sim.tabletop.experts import SkillExpert

        return SkillExpert
    if name == "scripted":
        if sparsity is not None:
            raise ValueError("--sparse applies to VLA policies, not to the scripted expert")
        # deferred: sim is the optional sim extra; `vla serve` and `vla client` run without it
        from sim import scripted_expert

        return scripted_expert
    if not Path(name).is_dir():
        raise ValueError(f"unknown policy {name!r}; expected {POLICY_KINDS} (no such directory: check the path)")
    if (Path(name) / "planner.json").is_file():  # its action head is not what it was trained for: it would score 0
        raise ValueError(f"{name} is a planner checkpoint (it has planner.json): give it as --planner {name}, with an "
                         "action policy as --policy (e.g. --policy policies/tiny_sim_single)")
    # deferred: torch; vla.loading is imported by every `vla` command
    from vla.peers.lerobot_policy import is_lerobot_checkpoint

    if is_lerobot_checkpoint(name):
        if sparsity is not None or decoding is not None or n_action_steps is not None:
            raise ValueError("--sparse, --decoding and --n-action-steps apply to VLA policies, not to LeRobot "
                             "checkpoints")
        # deferred: torch, as above
        from vla.peers import LeRobotPolicy

        peer = LeRobotPolicy.from_pretrained(name)
        return lambda env: peer
    return _vla_factory(name, decoding, sparsity, n_action_steps)


def _vla_factory(name: str, decoding: str | None, sparsity, n_action_steps: int | None = None) -> PolicyFactory:
    # deferred: torch; vla.loading is imported by every `vla` command
    from vla.policy import VLAPolicy

    # The event-sparse path runs the eager fp32 model; the static GPU path is for dense policies.
    policy = VLAPolicy.from_pretrained(name, decoding=decoding, n_action_steps=n_action_steps,
                                       fast=False if sparsity is not None else None)
    if sparsity is not None:
        # deferred: torch, as above
        from vla.sparsity.policy import SparseVLAPolicy, load_arm_mask

        config, world_cameras = sparsity
        policy = SparseVLAPolicy(policy.model, config, decoding=decoding, name=f"{Path(name).name}-sparse",
                                 world_cameras=world_cameras, arm_mask=load_arm_mask(config, name))
    return lambda env: policy


def planned(factory: PolicyFactory, planner: str, system: str = "system1", candidates: int = 4, seed: int = 0,
            replan: bool = True) -> PolicyFactory:
    """The policy factory wrapped in the loop of the planner checkpoint `planner`."""
    # deferred: torch; vla.loading is imported by every `vla` command
    from vla.planner.planner import Planner

    loaded = Planner.from_pretrained(planner, system=system, candidates=candidates, seed=seed)
    return lambda env: PlannedPolicy(loaded, factory(env), replan=replan)


def servable_policy(name: str, decoding: str | None = None, sparsity=None, n_action_steps: int | None = None):
    """The one policy `vla serve` hosts: a checkpoint, dense or event-sparse (no env, so no scripted expert)."""
    if name in ("scripted", "scripted-skills"):
        raise ValueError(f"--policy {name}: the scripted expert reads the simulator's private state and "
                         "cannot be served; serve a trained policy directory (e.g. policies/tiny_sim_single)")
    return policy_factory(name, decoding, sparsity, n_action_steps)(None)
