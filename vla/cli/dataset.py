"""`vla dataset info|from-rosbag`: their flags and what they run.

`vla.cli` imports this module only when `vla dataset` is parsed: `add_arguments(parser)` declares the
subcommands and their flags, `run(args) -> int` runs the one parsed and returns the exit status.
"""

from __future__ import annotations

import argparse
import json
from pathlib import Path

from vla.data import open_dataset
from vla.data.info import dataset_info, first_frames_grid, format_info
from vla.data.rosbag import convert_rosbag
from vla.robot import load_robot_config


def add_arguments(parser: argparse.ArgumentParser) -> None:
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


def run(args: argparse.Namespace) -> int:
    """Run the `vla dataset` subcommand that was parsed."""
    return {"info": run_info, "from-rosbag": run_from_rosbag}[args.dataset_command](args)


def run_info(args: argparse.Namespace) -> int:
    """Print what a dataset holds (text or JSON) and write a PNG of its episodes' first frames."""
    ds = open_dataset(args.dataset, need_camera=False)
    info = dataset_info(ds)
    if ds.cameras:
        grid = args.grid or f"out/{Path(args.dataset).name}_first_frames.png"
        info["first_frames_png"] = str(first_frames_grid(ds, grid, args.grid_episodes))
    print(json.dumps(info, indent=2) if args.json else format_info(info))
    return 0


def run_from_rosbag(args: argparse.Namespace) -> int:
    """Convert a rosbag2 into a new LeRobot dataset; refuses an --out that holds anything."""
    out = Path(args.out)
    if out.exists() and any(out.iterdir()):
        raise FileExistsError(f"{out} exists and is not empty; choose another --out")
    summary = convert_rosbag(args.bag, load_robot_config(args.robot), out, args.episode_split, args.task, args.fps,
                             args.tolerance, args.instruction_topic, use_videos=args.storage == "video")
    print(json.dumps(summary, indent=2))
    return 0
