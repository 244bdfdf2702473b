"""`vla` command line: the composition root that wires policies, the simulator and reports.

Each top-level command is a handler (`cmd_<name>`) and the flags its parser declares (`add_*`).
Policies are resolved by vla.loading (which declares the policy, sparsity and planner flags it reads);
each `vla bench <name>` owns its flags and its run in its vla.bench module.
"""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path

from vla.loading import DECODINGS, SHIPPED_POLICY, add_planner_arguments, add_policy_arguments

DEFAULT_RECORD_SEED = 1000  # as vla.data.record: evaluation seeds 0..999 stay unseen


def cmd_tasks(args: argparse.Namespace) -> int:
    from sim import TASKS

    for task in TASKS.values():
        print(f"{task.id}\t{task.group}")
    return 0


def cmd_eval(args: argparse.Namespace) -> int:
    from sim import make_env, resolve_tasks
    from vla.evaluate import evaluate, open_loop_report, write_report
    from vla.loading import policy_from_args

    if getattr(args, "heldout", None):  # open loop on held-out demonstrations (vla eval only): no simulator
        write_report(open_loop_report(args.policy, args.heldout, args.decoding), args.report)
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


def cmd_record(args: argparse.Namespace) -> int:
    from sim import resolve_tasks
    from vla.data.record import RecordingInterrupted, record

    try:
        summary = record(
            resolve_tasks(args.tasks), args.episodes, args.out, seed=args.seed, repo_id=args.repo_id,
            storage=args.storage, robot=args.robot, image_size=args.image_size, resume=args.resume,
            overwrite=args.overwrite, progress=not args.quiet, settle_frames=args.settle_frames,
        )
    except RecordingInterrupted as exc:
        print(json.dumps(exc.summary, indent=2))
        print(f"vla record: {exc}; continue with --resume", file=sys.stderr)
        return 130
    print(json.dumps(summary, indent=2))
    return 0


def cmd_from_rosbag(args: argparse.Namespace) -> int:
    from vla.data.rosbag import convert_rosbag
    from vla.robot import load_robot_config

    out = Path(args.out)
    if out.exists() and any(out.iterdir()):
        raise FileExistsError(f"{out} exists and is not empty; choose another --out")
    summary = convert_rosbag(args.bag, load_robot_config(args.robot), out, args.episode_split, args.task, args.fps,
                             args.tolerance, args.instruction_topic, use_videos=args.storage == "video")
    print(json.dumps(summary, indent=2))
    return 0


def cmd_train(args: argparse.Namespace) -> int:
    from vla.train.trainer import TrainConfig, train

    cfg = TrainConfig(steps=args.steps, batch_size=args.batch_size, lr=args.lr, seed=args.seed, lora=args.lora,
                      checkpoint_every=args.checkpoint_every, instruction_key=args.instruction_key,
                      warmup_steps=min(args.warmup_steps, max(1, args.steps // 10)),
                      parallel_fraction=args.parallel_fraction, label_sigma=args.label_sigma)
    if args.objective == "planner":
        from vla.loading import planner_training_error
        from vla.planner.train import train_planner

        if error := planner_training_error(args):
            print(f"vla train --objective planner: {error}", file=sys.stderr)
            return 2
        summary = train_planner(args.dataset, args.out, args.init, cfg, resume=args.resume, progress=not args.quiet)
        print(json.dumps({k: summary[k] for k in ("steps", "wall_time_s", "episodes", "parameters")}, indent=2))
        return 0
    overrides = {k: v for k, v in (("chunk_size", args.chunk_size), ("n_action_steps", args.n_action_steps),
                                   ("decoding", args.decoding)) if v}
    summary = train(args.dataset, args.out, args.model, cfg, resume=args.resume, progress=not args.quiet,
                    model_overrides=overrides)
    if summary:
        print(json.dumps({k: summary[k] for k in ("steps", "wall_time_s", "frames", "parameters")}, indent=2))
    return 0


def cmd_dataset(args: argparse.Namespace) -> int:
    from vla.data import open_dataset
    from vla.data.info import dataset_info, first_frames_grid, format_info

    ds = open_dataset(args.dataset, need_camera=False)
    info = dataset_info(ds)
    if ds.cameras:
        grid = args.grid or f"out/{Path(args.dataset).name}_first_frames.png"
        info["first_frames_png"] = str(first_frames_grid(ds, grid, args.grid_episodes))
    print(json.dumps(info, indent=2) if args.json else format_info(info))
    return 0


def cmd_serve(args: argparse.Namespace) -> int:
    from vla.loading import served_policy
    from vla.serving.server import PolicyServer

    policy = served_policy(args)
    server = PolicyServer(policy, args.bind, curve_keys=args.curve_keys)
    print(f"serving {policy.metadata.get('name')} on {server.address} (Ctrl-C to stop)", file=sys.stderr)
    try:
        server.serve()
    finally:
        server.close()
    return 0


def cmd_client(args: argparse.Namespace) -> int:
    from vla.serving.client import PolicyClient, ServerError

    client = PolicyClient(args.connect, timeout_s=args.timeout, retries=0, server_key=args.server_key)
    try:
        reply = client.request(args.kind)
    except TimeoutError as exc:
        print(f"vla client: {exc}", file=sys.stderr)
        return 1
    except ServerError as exc:
        print(f"vla client: server error {exc}", file=sys.stderr)
        return 1
    finally:
        client.close()
    print(json.dumps(reply, indent=2))
    return 0


def cmd_keys(args: argparse.Namespace) -> int:
    from vla.serving.keys import create_curve_keys

    out = create_curve_keys(args.out, overwrite=args.overwrite)
    print(f"CURVE keys in {out}: give server.key (public) to clients; keep server.key_secret on the server")
    return 0


def add_rollout_arguments(p: argparse.ArgumentParser, policy: str | None = "scripted") -> None:
    add_policy_arguments(p, default=policy)
    p.add_argument("--image-size", type=int, default=None, help="square camera images (default: robot config)")
    p.add_argument("--seed", type=int, default=0, help="episode i uses seed S+i")
    p.add_argument("--quiet", action="store_true", help="no progress bar")


def add_eval_parsers(sub) -> None:
    ev = sub.add_parser("eval", help="roll out a policy in the simulator and report success rates")
    add_rollout_arguments(ev)
    ev.add_argument("--tasks", default="single", help="ids (comma-separated), single, multi or all")
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


def add_record_parser(sub) -> None:
    rec = sub.add_parser("record", help="record scripted-expert demonstrations into a LeRobot v3.0 dataset")
    rec.add_argument("--tasks", default="single", help="ids (comma-separated), single, multi or all")
    rec.add_argument("--episodes", type=int, required=True, help="successful episodes per task")
    rec.add_argument("--out", required=True, help="dataset directory")
    rec.add_argument("--seed", type=int, default=DEFAULT_RECORD_SEED,
                     help="first seed per task (default 1000: evaluation seeds 0..999 stay unseen)")
    rec.add_argument("--repo-id", default=None, help="dataset name in LeRobot's metadata (default local/<dir name>)")
    rec.add_argument("--storage", choices=["video", "images"], default="video", help="MP4 (AV1) videos or PNG images")
    rec.add_argument("--robot", default="panda")
    rec.add_argument("--image-size", type=int, default=None)
    rec.add_argument("--resume", action="store_true", help="continue an interrupted recording in --out")
    rec.add_argument("--settle-frames", type=int, default=0,
                     help="frames kept after success with the arm still: the final scene the planner learns as goal")
    rec.add_argument("--overwrite", action="store_true", help="replace an existing dataset in --out")
    rec.add_argument("--quiet", action="store_true")
    rec.set_defaults(func=cmd_record)


def add_train_parser(sub) -> None:
    tr = sub.add_parser("train", help="fine-tune a VLA on a LeRobot dataset")
    tr.add_argument("--dataset", required=True, help="LeRobot v3.0 dataset directory (or hub repo id)")
    tr.add_argument("--out", required=True, help="policy directory (checkpoints under OUT/checkpoints)")
    tr.add_argument("--model", default="tiny", help="configs/models/<name>.yaml, a YAML path, or a local HF VLM dir")
    tr.add_argument("--steps", type=int, default=5000)
    tr.add_argument("--batch-size", type=int, default=32)
    tr.add_argument("--lr", type=float, default=5e-4)
    tr.add_argument("--warmup-steps", type=int, default=300)
    tr.add_argument("--seed", type=int, default=0)
    tr.add_argument("--chunk-size", type=int, default=None, help="override the model config's K")
    tr.add_argument("--n-action-steps", type=int, default=None,
                    help="override the model config's actions executed per inference (at most K)")
    tr.add_argument("--decoding", choices=DECODINGS, default=None)
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
                    help="planner: the VLA checkpoint to start from (its backbone and tokenizer)")
    tr.add_argument("--quiet", action="store_true")
    tr.set_defaults(func=cmd_train)


def add_dataset_parser(sub) -> None:
    ds_sub = sub.add_parser("dataset", help="inspect LeRobot datasets").add_subparsers(dest="dataset_command",
                                                                                       required=True)
    info = ds_sub.add_parser("info", help="episodes, frames, fps, features, tasks, and a PNG of first frames")
    info.add_argument("dataset", help="dataset directory (LeRobot v3.0)")
    info.add_argument("--grid", default=None, help="PNG path (default out/<name>_first_frames.png)")
    info.add_argument("--grid-episodes", type=int, default=4)
    info.add_argument("--json", action="store_true", help="print JSON instead of text")
    info.set_defaults(func=cmd_dataset)
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
    rb.set_defaults(func=cmd_from_rosbag)


def add_serving_parsers(sub) -> None:
    srv = sub.add_parser("serve", help="host a policy over ZeroMQ for many clients")
    add_policy_arguments(srv, default=None, required=True, policy_help="a VLA or LeRobot checkpoint directory",
                         robot_help="--sparse: robot config whose fixed cameras trigger inference")
    srv.add_argument("--bind", default="tcp://127.0.0.1:5555", help="anything but loopback needs --curve-keys")
    srv.add_argument("--curve-keys", default=None, help="directory with server.key_secret (see `vla keys`)")
    srv.set_defaults(func=cmd_serve)
    cl = sub.add_parser("client", help="ask a policy server for health or metadata (JSON)")
    cl.add_argument("kind", choices=["health", "metadata"])
    cl.add_argument("--connect", default="tcp://127.0.0.1:5555")
    cl.add_argument("--timeout", type=float, default=2.0, help="seconds; exit status 1 when no answer")
    cl.add_argument("--server-key", default=None, help="server.key (public) when the server uses CURVE")
    cl.set_defaults(func=cmd_client)
    keys = sub.add_parser("keys", help="create CURVE key pairs for a server and its clients")
    keys.add_argument("--out", required=True)
    keys.add_argument("--overwrite", action="store_true")
    keys.set_defaults(func=cmd_keys)


def build_parser() -> argparse.ArgumentParser:
    from vla.bench import add_bench_parsers

    parser = argparse.ArgumentParser(prog="vla", description=__doc__)
    sub = parser.add_subparsers(dest="command", required=True)
    sub.add_parser("tasks", help="list task ids and their group (single or multi)").set_defaults(func=cmd_tasks)
    add_eval_parsers(sub)
    add_record_parser(sub)
    add_train_parser(sub)
    add_dataset_parser(sub)
    add_serving_parsers(sub)
    add_bench_parsers(sub.add_parser("bench", help="benchmarks (scripts, not tests): vla bench NAME --help"))
    return parser


def main(argv: list[str] | None = None) -> int:
    from vla.robot import ConfigError

    args = build_parser().parse_args(argv)
    try:
        return args.func(args)
    except (ValueError, ConfigError, RuntimeError, FileNotFoundError, FileExistsError) as exc:
        print(f"vla {args.command}: error: {exc}", file=sys.stderr)
        return 2
    except KeyboardInterrupt:
        print(f"vla {args.command}: interrupted", file=sys.stderr)
        return 130


if __name__ == "__main__":
    sys.exit(main())
