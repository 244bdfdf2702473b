"""`vla record`: scripted-expert demonstrations into a LeRobot v3.0 dataset; its flags and what it runs.

`vla.cli` imports this module only when `vla record` is parsed: `add_arguments(parser)` declares the flags,
`run(args) -> int` runs it and returns the exit status.
"""

from __future__ import annotations

import argparse
import json
import sys

from sim import resolve_tasks
from vla.data.record import DEFAULT_RECORD_SEED, RecordingInterrupted, record


def add_arguments(rec: argparse.ArgumentParser) -> None:
    """The flags of `vla record`."""
    rec.add_argument("--tasks", default="single", help="task ids and groups, comma-separated (single, multi, all, "
                    "metaworld/mt10, ...: `vla tasks`)")
    rec.add_argument("--episodes", type=int, required=True, help="successful episodes per task")
    rec.add_argument("--out", required=True, help="dataset directory")
    rec.add_argument("--seed", type=int, default=DEFAULT_RECORD_SEED,
                     help="first seed per task (default 1000: evaluation seeds 0..999 stay unseen)")
    rec.add_argument("--repo-id", default=None, help="dataset name in LeRobot's metadata (default local/<dir name>)")
    rec.add_argument("--storage", choices=["video", "images"], default="video", help="MP4 (AV1) videos or PNG images")
    rec.add_argument("--robot", default=None, help="robot config name or YAML path (default: the tasks' suite's)")
    rec.add_argument("--image-size", type=int, default=None)
    rec.add_argument("--resume", action="store_true", help="continue an interrupted recording in --out")
    rec.add_argument("--settle-frames", type=int, default=0,
                     help="frames kept after success with the arm still: the final scene the planner learns as goal")
    rec.add_argument("--detours", type=float, default=0.0,
                     help="share of episodes that are recovery demonstrations: the arm is driven off course "
                          "first (unrecorded) and the expert shows the way back (tabletop tasks)")
    rec.add_argument("--overwrite", action="store_true", help="replace an existing dataset in --out")
    rec.add_argument("--quiet", action="store_true")


def run(args: argparse.Namespace) -> int:
    """Record scripted-expert demonstrations; 130 (with the summary so far) when interrupted."""
    try:
        summary = record(
            resolve_tasks(args.tasks), args.episodes, args.out, seed=args.seed, repo_id=args.repo_id,
            storage=args.storage, robot=args.robot, image_size=args.image_size, resume=args.resume,
            overwrite=args.overwrite, progress=not args.quiet, settle_frames=args.settle_frames,
            detours=args.detours,
        )
    except RecordingInterrupted as exc:
        print(json.dumps(exc.summary, indent=2))
        print(f"vla record: {exc}; continue with --resume", file=sys.stderr)
        return 130
    print(json.dumps(summary, indent=2))
    return 0
