"""`vla` command line: the composition root that wires policies, the simulator and reports."""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path


def _write_report(report: dict, path: str | None) -> None:
    text = json.dumps(report, indent=2)
    if path:
        Path(path).parent.mkdir(parents=True, exist_ok=True)
        Path(path).write_text(text + "\n")
    print(text)


def _sparsity(args: argparse.Namespace):
    """(event-sparsity config, the robot's cameras not on the arm) the flags ask for; None for dense."""
    if not getattr(args, "sparse", False):
        return None
    from vla.robot import load_robot_config
    from vla.sparsity.policy import load_sparsity_config

    config = load_sparsity_config(args.sparsity_config, trigger_threshold=args.trigger_threshold,
                                  token_budget=args.token_budget)
    return config, load_robot_config(args.robot).world_cameras


def _policy_factory(name: str, decoding: str | None = None, sparsity=None):
    """Policy name -> factory(env) -> Policy: 'scripted', or a checkpoint directory (dense or event-sparse)."""
    if name == "scripted-skills":  # the scripted skills, driven by the subtask each observation names
        from sim.experts import SkillExpert

        return SkillExpert
    if name == "scripted":
        if sparsity is not None:
            raise ValueError("--sparse applies to VLA policies, not to the scripted expert")
        from sim.experts import ScriptedExpert

        return ScriptedExpert
    if Path(name).is_dir():
        from vla.peers.lerobot_policy import is_lerobot_checkpoint

        if is_lerobot_checkpoint(name):  # a LeRobot policy (ACT, Diffusion, ...) through its own processors
            if sparsity is not None or decoding is not None:
                raise ValueError("--sparse and --decoding apply to VLA policies, not to LeRobot checkpoints")
            from vla.peers import LeRobotPolicy

            peer = LeRobotPolicy.from_pretrained(name)
            return lambda env: peer
        from vla.policy import VLAPolicy

        # The event-sparse path runs the eager fp32 model; the static GPU path is for dense policies.
        policy = VLAPolicy.from_pretrained(name, decoding=decoding, fast=False if sparsity is not None else None)
        if sparsity is not None:
            from vla.sparsity.policy import SparseVLAPolicy

            config, world_cameras = sparsity
            policy = SparseVLAPolicy(policy.model, config, decoding=decoding, name=f"{Path(name).name}-sparse",
                                     world_cameras=world_cameras)
        return lambda env: policy
    raise ValueError(
        f"unknown policy {name!r}; expected 'scripted', 'scripted-skills' or a policy checkpoint directory"
    )


def _planned(factory, args: argparse.Namespace):
    """The policy factory wrapped in the planner's loop when --planner is given."""
    if not getattr(args, "planner", None):
        return factory
    from vla.control.planned import PlannedPolicy
    from vla.planner.planner import Planner

    planner = Planner.from_pretrained(args.planner, system=args.system, candidates=args.candidates, seed=args.seed)
    return lambda env: PlannedPolicy(planner, factory(env), replan=not args.no_replan)


def cmd_tasks(args: argparse.Namespace) -> int:
    from sim import TASKS

    for task in TASKS.values():
        print(f"{task.id}\t{task.group}")
    return 0


def cmd_eval(args: argparse.Namespace) -> int:
    from sim import make_env, resolve_tasks
    from vla.evaluate import evaluate

    if getattr(args, "heldout", None):  # open loop on recorded demonstrations: no simulator involved
        from vla.model.vla import VLAModel
        from vla.train.validate import open_loop_error

        model = VLAModel.from_pretrained(args.policy)
        report = {"policy": args.policy, "heldout": args.heldout, "decoding": args.decoding or model.config.decoding,
                  "chunk_size": model.config.chunk_size, "n_action_steps": model.config.n_action_steps,
                  **open_loop_error(model, args.heldout, args.decoding)}
        _write_report(report, args.report)
        return 0
    task_ids = resolve_tasks(args.tasks)
    factory = _planned(_policy_factory(args.policy, args.decoding, _sparsity(args)), args)
    report = evaluate(
        args.policy,
        task_ids,
        make_env=lambda t: make_env(t, robot=args.robot, image_size=args.image_size),
        make_policy=factory,
        episodes=args.episodes,
        seed=args.seed,
        video_dir=Path(args.video_dir) if args.video_dir else None,
        videos_per_task=args.videos_per_task,
        progress=not args.quiet,
    )
    _write_report(report, args.report)
    return 0


SHIPPED_POLICY = Path(__file__).resolve().parent.parent / "policies" / "tiny_sim_single"


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
        _write_report(exc.summary, None)
        print(f"vla record: {exc}; continue with --resume", file=sys.stderr)
        return 130
    _write_report(summary, None)
    return 0


def cmd_from_rosbag(args: argparse.Namespace) -> int:
    from vla.data.rosbag import convert_rosbag
    from vla.robot import load_robot_config

    out = Path(args.out)
    if out.exists() and any(out.iterdir()):
        raise FileExistsError(f"{out} exists and is not empty; choose another --out")
    summary = convert_rosbag(args.bag, load_robot_config(args.robot), out, args.episode_split, args.task, args.fps,
                             args.tolerance, args.instruction_topic, use_videos=args.storage == "video")
    _write_report(summary, None)
    return 0


def cmd_train(args: argparse.Namespace) -> int:
    from vla.train.trainer import TrainConfig, train

    cfg = TrainConfig(steps=args.steps, batch_size=args.batch_size, lr=args.lr, seed=args.seed, lora=args.lora,
                      checkpoint_every=args.checkpoint_every, instruction_key=args.instruction_key,
                      warmup_steps=min(args.warmup_steps, max(1, args.steps // 10)),
                      parallel_fraction=args.parallel_fraction, label_sigma=args.label_sigma)
    if args.objective == "planner":
        from vla.planner.train import train_planner

        ignored = [f for f, v in (("--model", args.model != "tiny"), ("--lora", args.lora),
                                  ("--chunk-size", args.chunk_size), ("--n-action-steps", args.n_action_steps),
                                  ("--decoding", args.decoding),
                                  ("--parallel-fraction", args.parallel_fraction != 0.5),
                                  ("--label-sigma", args.label_sigma)) if v]
        if ignored:
            print(f"vla train --objective planner: {', '.join(ignored)} apply to the action objective only; "
                  "the planner takes its backbone from --init", file=sys.stderr)
            return 2
        if not args.init:
            print("vla train --objective planner needs --init: the VLA checkpoint whose backbone learns to plan "
                  "(e.g. policies/tiny_sim_single)", file=sys.stderr)
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
    from vla.serving.server import PolicyServer

    if args.policy == "scripted":
        raise ValueError("the scripted expert reads the simulator's private state and cannot be served; "
                         "serve a trained policy directory (e.g. policies/tiny_sim_single)")
    policy = _policy_factory(args.policy, args.decoding, _sparsity(args))(None)
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
    import zmq.auth

    out = Path(args.out)
    out.mkdir(parents=True, exist_ok=True)
    for name in ("server", "client"):
        if (out / f"{name}.key_secret").exists() and not args.overwrite:
            raise FileExistsError(f"{out / (name + '.key_secret')} exists; pass --overwrite to replace the keys")
        zmq.auth.create_certificates(str(out), name)
    (out / "server.key_secret").chmod(0o600)
    (out / "client.key_secret").chmod(0o600)
    print(f"CURVE keys in {out}: give server.key (public) to clients; keep server.key_secret on the server")
    return 0


BENCHMARKS = ["sim", "data", "decoding", "serving", "handover", "rosbag", "ros-record", "sparsity", "gpu", "peers",
              "planner", "chunk"]
DEFAULT_DURATION = {"serving": 300.0, "rosbag": 30.0, "ros-record": 20.0}


def cmd_bench(args: argparse.Namespace) -> int:
    args.duration = args.duration or DEFAULT_DURATION.get(args.what)
    if args.what == "sim":
        from sim.bench import bench_sim

        _write_report(bench_sim(args.task, args.steps, args.image_size), args.report)
        return 0
    if args.what == "data":
        from sim import resolve_tasks
        from vla.bench.data import bench_data

        _write_report(bench_data(resolve_tasks(args.tasks or "single"), args.episodes, args.image_size), args.report)
        return 0
    if args.what == "decoding":
        from vla.bench.decoding import bench_decoding

        _write_report(bench_decoding(args.policy, args.repeats), args.report)
        return 0
    if args.what == "serving":
        from vla.bench.serving import bench_serving

        policy = args.policy or str(SHIPPED_POLICY)
        _write_report(bench_serving(policy, duration=args.duration), args.report)
        return 0
    if args.what == "handover":
        from vla.bench.handover import bench_handover

        _write_report(bench_handover(args.policy or str(SHIPPED_POLICY), args.task, args.episodes), args.report)
        return 0
    if args.what == "rosbag":
        from vla.bench.ros import bench_rosbag

        _write_report(bench_rosbag(args.duration), args.report)
        return 0
    if args.what == "ros-record":
        from vla.bench.ros import bench_ros_recording

        _write_report(bench_ros_recording(args.duration), args.report)
        return 0
    if args.what == "peers":
        from sim import resolve_tasks
        from vla.bench.peers import bench_peers

        if not args.dataset:
            raise ValueError("vla bench peers needs --dataset DIR (a LeRobot dataset)")
        _write_report(bench_peers(args.dataset, args.steps, args.episodes, resolve_tasks(args.tasks or "single"),
                                  out=args.out or "out/peers", batch_size=args.batch_size), args.report)
        return 0
    if args.what == "chunk":
        from sim import resolve_tasks
        from vla.bench.chunk import bench_chunk

        if not args.dataset or not args.heldout:
            raise ValueError("vla bench chunk needs --dataset DIR (training) and --heldout DIR (other seeds)")
        chunks = [int(k) for k in (args.chunks or "4,10,20").split(",")]
        _write_report(bench_chunk(args.dataset, args.heldout, chunks, args.steps, args.episodes,
                                  resolve_tasks(args.tasks or "single"), out=args.out or "out/chunk",
                                  batch_size=args.batch_size, seed=args.seed), args.report)
        return 0
    if args.what == "planner":
        from sim import make_env, resolve_tasks
        from vla.bench.planner import ARMS, bench_planner

        if not args.planner:
            raise ValueError(
                "vla bench planner needs --planner DIR (a checkpoint from `vla train --objective planner`)"
            )
        executor = args.policy or str(SHIPPED_POLICY)
        _write_report(bench_planner(
            args.planner, executor, lambda t: make_env(t, image_size=args.image_size), _policy_factory(executor),
            resolve_tasks(args.tasks or "multi"), args.episodes, seed=args.seed, candidates=args.candidates,
            arms=args.arms.split(",") if args.arms else list(ARMS), heldout_episodes=args.heldout_episodes,
        ), args.report)
        return 0
    if args.what == "gpu":
        from vla.bench.gpu import bench_gpu

        _write_report(bench_gpu(args.policy or str(SHIPPED_POLICY), args.repeats), args.report)
        return 0
    if args.what == "sparsity":
        from sim import resolve_tasks
        from vla.bench.sparsity import bench_sparsity

        tasks = resolve_tasks(args.tasks or "single")
        _write_report(bench_sparsity(args.policy or str(SHIPPED_POLICY), tasks, args.episodes,
                                     sweep_episodes=args.sweep_episodes, config=args.sparsity_config,
                                     plot=args.plot), args.report)
        return 0
    raise ValueError(f"unknown benchmark {args.what!r}; available: {', '.join(BENCHMARKS)}")


DEFAULT_RECORD_SEED = 1000  # as vla.data.record: evaluation seeds 0..999 stay unseen


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="vla", description=__doc__)
    sub = parser.add_subparsers(dest="command", required=True)

    sub.add_parser("tasks", help="list task ids and their group (single or multi)").set_defaults(func=cmd_tasks)

    def rollout_args(p: argparse.ArgumentParser, policy: str | None = "scripted") -> None:
        p.add_argument("--policy", default=policy, help="'scripted' (the privileged expert) or a policy directory")
        p.add_argument("--decoding", choices=["parallel", "autoregressive"], default=None,
                       help="VLA decoding mode (default: the checkpoint's)")
        p.add_argument("--robot", default="panda", help="robot config name or YAML path")
        p.add_argument("--image-size", type=int, default=None, help="square camera images (default: robot config)")
        p.add_argument("--seed", type=int, default=0, help="episode i uses seed S+i")
        p.add_argument("--quiet", action="store_true", help="no progress bar")
        sparse_args(p)

    def sparse_args(p: argparse.ArgumentParser) -> None:
        p.add_argument("--sparse", action="store_true",
                       help="event-triggered visual sparsity: infer on change, re-encode changed patches only")
        p.add_argument("--sparsity-config", default=None, help="YAML (default: configs/sparsity/default.yaml)")
        p.add_argument("--trigger-threshold", type=float, default=None,
                       help="re-infer when this fraction of the trigger cameras' patches changed")
        p.add_argument("--token-budget", type=int, default=None,
                       help="image tokens per camera the language model keeps (coverage-based pruning)")

    ev = sub.add_parser("eval", help="roll out a policy in the simulator and report success rates")
    rollout_args(ev)
    ev.add_argument("--tasks", default="single", help="ids (comma-separated), single, multi or all")
    ev.add_argument("--episodes", type=int, default=10, help="episodes per task")
    ev.add_argument("--report", default=None, help="write the JSON report here")
    ev.add_argument("--heldout", default=None,
                    help="a LeRobot dataset of demonstrations the policy never saw: report the open-loop error of "
                         "its predicted chunks against them instead of running the simulator")
    ev.add_argument("--video-dir", default=None, help="write MP4s of the first episodes of each task here")
    ev.add_argument("--videos-per-task", type=int, default=2)
    ev.add_argument("--planner", default=None,
                    help="a planner checkpoint: the goal becomes subtasks for the policy (multi-step tasks)")
    ev.add_argument("--system", choices=["system1", "system2"], default="system1",
                    help="planner: one greedy plan, or candidates scored by world model and critic")
    ev.add_argument("--candidates", type=int, default=4, help="planner: System-2 candidate plans")
    ev.add_argument("--no-replan", action="store_true",
                    help="planner: follow the first plan whatever happens (a first plan that failed is still retried)")
    ev.set_defaults(func=cmd_eval)

    demo = sub.add_parser("demo", help="the shipped policy in the simulator, with videos and a report")
    rollout_args(demo, policy=None)
    demo.add_argument("--tasks", default=None, help="default: single for the VLA, all for the expert")
    demo.add_argument("--episodes", type=int, default=2)
    demo.add_argument("--out", default="out/demo")
    demo.set_defaults(func=cmd_demo)

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
    tr.add_argument("--decoding", choices=["parallel", "autoregressive"], default=None)
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

    ds = sub.add_parser("dataset", help="inspect LeRobot datasets")
    ds_sub = ds.add_subparsers(dest="dataset_command", required=True)
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
    rb.set_defaults(func=cmd_from_rosbag)
    info.set_defaults(func=cmd_dataset)

    srv = sub.add_parser("serve", help="host a policy over ZeroMQ for many clients")
    srv.add_argument("--policy", required=True, help="policy directory")
    srv.add_argument("--bind", default="tcp://127.0.0.1:5555", help="anything but loopback needs --curve-keys")
    srv.add_argument("--curve-keys", default=None, help="directory with server.key_secret (see `vla keys`)")
    srv.add_argument("--decoding", choices=["parallel", "autoregressive"], default=None)
    srv.add_argument("--robot", default="panda", help="--sparse: robot config whose fixed cameras trigger inference")
    sparse_args(srv)
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

    bench = sub.add_parser("bench", help="benchmarks (scripts, not tests)")
    bench.add_argument("what", choices=BENCHMARKS)
    bench.add_argument("--duration", type=float, default=None,
                       help="seconds: serving's 20 Hz loop (300), rosbag's bag (30), ros-record's recording (20)")
    bench.add_argument("--policy", default=None,
                       help="decoding/serving: policy directory (default: a fresh tiny model / the shipped policy)")
    bench.add_argument("--repeats", type=int, default=20, help="decoding: timed chunks per mode")
    bench.add_argument("--task", default="place_in_bowl", help="sim, handover: the task to drive")
    bench.add_argument("--steps", type=int, default=500, help="sim: control steps; peers: optimizer steps per policy")
    bench.add_argument("--tasks", default=None, help="data, sparsity, peers (default single), planner (default multi)")
    bench.add_argument("--episodes", type=int, default=10,
                       help="data, sparsity, peers: episodes per task; handover: episodes")
    bench.add_argument("--image-size", type=int, default=None)
    bench.add_argument("--dataset", default=None, help="peers: the LeRobot dataset all policies train on")
    bench.add_argument("--batch-size", type=int, default=32, help="peers: samples per optimizer step")
    bench.add_argument("--out", default=None, help="peers: where the trained policies go (default out/peers)")
    bench.add_argument("--sweep-episodes", type=int, default=10, help="sparsity: episodes per task per sweep point")
    bench.add_argument("--sparsity-config", default=None,
                       help="sparsity: YAML (default: configs/sparsity/default.yaml)")
    bench.add_argument("--plot", default=None, help="sparsity: PNG of success vs speed-up over the threshold sweep")
    bench.add_argument("--planner", default=None, help="planner: the planner checkpoint")
    bench.add_argument("--candidates", type=int, default=4, help="planner: System-2 candidate plans")
    bench.add_argument("--arms", default=None, help="planner: comma-separated arms (default all)")
    bench.add_argument("--heldout-episodes", type=int, default=20,
                       help="planner: held-out episodes per task for plan/world/describe/critic accuracy")
    bench.add_argument("--seed", type=int, default=0,
                       help="planner: first episode seed; chunk: training seed and first episode seed")
    bench.add_argument("--heldout", default=None,
                       help="chunk: a LeRobot dataset recorded from other seeds, for the open-loop error")
    bench.add_argument("--chunks", default=None, help="chunk: comma-separated chunk lengths K (default 4,10,20)")
    bench.add_argument("--report", default=None)
    bench.set_defaults(func=cmd_bench)
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
