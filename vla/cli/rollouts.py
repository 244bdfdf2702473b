"""`vla tasks`, `vla eval` and `vla demo`: a policy rolled out in the simulator (or open loop on held-out
demonstrations), with a report."""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

from vla.cli.policy_args import add_planner_arguments, add_policy_arguments, policy_from_args
from vla.loading import SHIPPED_POLICY


def cmd_tasks(args: argparse.Namespace) -> int:
    # deferred: sim is the optional sim extra (MuJoCo); every `vla` command parses this module
    from sim import GROUPS, MISSING, TASKS

    for task in TASKS.values():
        sets = ",".join(getattr(task, "sets", ()))
        print(f"{task.id}\t{task.group}" + (f"\t{sets}" if sets else ""))
    print(f"groups: {', '.join(GROUPS)}", file=sys.stderr)
    for suite, why in MISSING.items():
        print(f"{suite}: {why}", file=sys.stderr)
    return 0


def cmd_eval(args: argparse.Namespace) -> int:
    # deferred: sim and vla.evaluate need the sim extra (MuJoCo, tqdm); `vla client` on a robot does without
    from sim import make_env, resolve_tasks
    from vla.evaluate import evaluate, open_loop_report, write_report

    if getattr(args, "heldout", None):  # open loop on held-out demonstrations (vla eval only): no simulator
        write_report(open_loop_report(args.policy, args.heldout, args.decoding, robot=args.robot,
                                      n_action_steps=args.n_action_steps), args.report)
        return 0
    task_ids = resolve_tasks(args.tasks)
    report = evaluate(args.policy, task_ids, lambda t: make_env(t, robot=args.robot, image_size=args.image_size),
                      policy_from_args(args), episodes=args.episodes, seed=args.seed,
                      video_dir=Path(args.video_dir) if args.video_dir else None,
                      videos_per_task=args.videos_per_task, progress=not args.quiet)
    write_report(report, args.report)
    return 0


def cmd_demo(args: argparse.Namespace) -> int:
    """The shipped VLA on the single-step tasks it was trained for (the expert on every task if it is absent)."""
    out = Path(args.out)
    if args.policy is None:
        args.policy = str(SHIPPED_POLICY) if (SHIPPED_POLICY / "model.safetensors").is_file() else "scripted"
    args.tasks = args.tasks or ("all" if args.policy == "scripted" else "single")
    args.report, args.video_dir, args.videos_per_task = str(out / "report.json"), str(out / "videos"), 1
    code = cmd_eval(args)
    print(f"\nreport: {out / 'report.json'}\nvideos: {out / 'videos'}", file=sys.stderr)
    return code


def add_rollout_arguments(p: argparse.ArgumentParser, policy: str | None = "scripted") -> None:
    add_policy_arguments(p, default=policy)
    p.add_argument("--image-size", type=int, default=None, help="square camera images (default: robot config)")
    p.add_argument("--seed", type=int, default=0, help="episode i uses seed S+i")
    p.add_argument("--quiet", action="store_true", help="no progress bar")


def add_eval_parsers(sub) -> None:
    ev = sub.add_parser("eval", help="roll out a policy in the simulator and report success rates")
    add_rollout_arguments(ev)
    ev.add_argument("--tasks", default="single", help="task ids and groups, comma-separated (single, multi, all, "
                    "metaworld/mt10, ...: `vla tasks`)")
    ev.add_argument("--episodes", type=int, default=10, help="episodes per task")
    ev.add_argument("--report", default=None, help="write the JSON report here")
    ev.add_argument("--heldout", default=None,
                    help="a LeRobot dataset of demonstrations the policy never saw: report the open-loop error of "
                         "its predicted chunks against them instead of running the simulator")
    ev.add_argument("--video-dir", default=None, help="write MP4s of the first episodes of each task here")
    ev.add_argument("--videos-per-task", type=int, default=2)
    add_planner_arguments(ev)
    ev.set_defaults(func=cmd_eval)
    demo = sub.add_parser("demo", help="the shipped policy in the simulator, with videos and a report")
    add_rollout_arguments(demo, policy=None)
    demo.add_argument("--tasks", default=None, help="default: single for the VLA, all for the expert")
    demo.add_argument("--episodes", type=int, default=2)
    demo.add_argument("--out", default="out/demo")
    demo.set_defaults(func=cmd_demo)
