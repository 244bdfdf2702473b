"""`vla record` and `vla dataset info|from-rosbag`: their flags and what they run.

`vla.cli` imports this module only when one of these commands is parsed: `add_<command>_arguments(parser)`
declares the flags, `run_<command>(args) -> int` runs it and returns the exit status.
"""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path

from vla.data.record import DEFAULT_RECORD_SEED


def add_record_arguments(rec: argparse.ArgumentParser) -> None:
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


def run_record(args: argparse.Namespace) -> int:
    """Record scripted-expert demonstrations; 130 (with the summary so far) when interrupted."""
    from sim import resolve_tasks
    from vla.data.record import RecordingInterrupted, record

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


def add_dataset_arguments(parser: argparse.ArgumentParser) -> None:
    """`vla dataset info` and `vla dataset from-rosbag` with their flags."""
    ds_sub = parser.add_subparsers(dest="dataset_command", required=True)
    info = ds_sub.add_parser("info", help="episodes, frames, fps, features, tasks, and a PNG of first frames")
    info.add_argument("dataset", help="dataset directory (LeRobot v3.0)")
    info.add_argument("--grid", default=None, help="PNG path (default out/<name>_first_frames.png)")
    info.add_argument("--grid-episodes", type=int, default=4)
    info.add_argument("--json", action="store_true", help="print JSON instead of text")
    rb = ds_sub.add_parser("from-rosbag", help="convert a rosbag2 (sqlite3 or MCAP) into a LeRobot v3.0 dataset")
    rb.add_argument("bag", help="rosbag2 directory (or .mcap / .db3 file)")
    rb.add_argument("--robot", default="panda", help="robot config: topics, joint order, cameras")
    rb.add_argument("--out", required=True)
    rb.add_argument("--episode-split", default="auto",
                    help="bag | instruction | gap:SECONDS (auto: instruction when the bag has one, else gap:1.0)")
    rb.add_argument("--task", default=None, help="task text when the bag has no instruction topic")
    rb.add_argument("--fps", type=float, default=None, help="frame rate (default: the robot's control rate)")
    rb.add_argument("--tolerance", type=float, default=0.05, help="seconds: nearest-sample tolerance")
    rb.add_argument("--instruction-topic", default="/vla/instruction")
    rb.add_argument("--storage", choices=["video", "images"], default="video")


def run_dataset(args: argparse.Namespace) -> int:
    """Run the `vla dataset` subcommand that was parsed."""
    return {"info": run_info, "from-rosbag": run_from_rosbag}[args.dataset_command](args)


def run_info(args: argparse.Namespace) -> int:
    """Print what a dataset holds (text or JSON) and write a PNG of its episodes' first frames."""
    from vla.data import open_dataset
    from vla.data.info import dataset_info, first_frames_grid, format_info

    ds = open_dataset(args.dataset, need_camera=False)
    info = dataset_info(ds)
    if ds.cameras:
        grid = args.grid or f"out/{Path(args.dataset).name}_first_frames.png"
        info["first_frames_png"] = str(first_frames_grid(ds, grid, args.grid_episodes))
    print(json.dumps(info, indent=2) if args.json else format_info(info))
    return 0


def run_from_rosbag(args: argparse.Namespace) -> int:
    """Convert a rosbag2 into a new LeRobot dataset; refuses an --out that holds anything."""
    from vla.data.rosbag import convert_rosbag
    from vla.robot import load_robot_config

    out = Path(args.out)
    if out.exists() and any(out.iterdir()):
        raise FileExistsError(f"{out} exists and is not empty; choose another --out")
    summary = convert_rosbag(args.bag, load_robot_config(args.robot), out, args.episode_split, args.task, args.fps,
                             args.tolerance, args.instruction_topic, use_videos=args.storage == "video")
    print(json.dumps(summary, indent=2))
    return 0
