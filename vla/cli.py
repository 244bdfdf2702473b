"""`vla` command line: the composition root that wires policies, the simulator and reports.

`eval`, `demo` and `serve` wire a policy to the simulator or a server, and `tasks`, `client` and
`keys` are a few lines each: they are here, each a handler (`cmd_<name>`) and the flags its parser
declares (`add_*`). Every other command is owned by the module it drives (COMMANDS), imported only
when that command is parsed so that `vla tasks` or `vla client` do not pay for torch; each
`vla bench <name>` likewise owns its flags and its run in its vla.bench module. Policies are
resolved by vla.loading (which declares the policy, sparsity and planner flags it reads).
"""

from __future__ import annotations

import argparse
import importlib
import json
import signal
import sys
from pathlib import Path

from vla.loading import SHIPPED_POLICY, add_planner_arguments, add_policy_arguments

# name -> (module, one-line help). The module declares the flags in `add_<name>_arguments(parser)`
# and runs the command in `run_<name>(args) -> int`.
COMMANDS: dict[str, tuple[str, str]] = {
    "record": ("vla.data.commands", "record scripted-expert demonstrations into a LeRobot v3.0 dataset"),
    "train": ("vla.train.commands", "fine-tune a VLA on a LeRobot dataset"),
    "dataset": ("vla.data.commands", "inspect LeRobot datasets"),
}


class CommandParser(argparse.ArgumentParser):
    """A command's parser; for a command in COMMANDS its module adds the flags the first time it parses."""

    def __init__(self, *args, module: str | None = None, command: str = "", **kwargs):
        super().__init__(*args, **kwargs)
        self.module, self.command = module, command

    def parse_known_args(self, args=None, namespace=None):
        if self.module:  # once: the module is imported and its flags added
            owner, self.module = importlib.import_module(self.module), None
            getattr(owner, f"add_{self.command}_arguments")(self)
            self.set_defaults(func=getattr(owner, f"run_{self.command}"))
        return super().parse_known_args(args, namespace)


def cmd_tasks(args: argparse.Namespace) -> int:
    from sim import GROUPS, MISSING, TASKS

    for task in TASKS.values():
        sets = ",".join(getattr(task, "sets", ()))
        print(f"{task.id}\t{task.group}" + (f"\t{sets}" if sets else ""))
    print(f"groups: {', '.join(GROUPS)}", file=sys.stderr)
    for suite, why in MISSING.items():
        print(f"{suite}: {why}", file=sys.stderr)
    return 0


def cmd_eval(args: argparse.Namespace) -> int:
    from sim import make_env, resolve_tasks
    from vla.evaluate import evaluate, open_loop_report, write_report
    from vla.loading import policy_from_args

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


def cmd_serve(args: argparse.Namespace) -> int:
    from vla.loading import served_policy
    from vla.serving.server import PolicyServer

    # Ctrl-C and SIGTERM (ros2 launch, systemd, docker stop) are the normal way to stop a server:
    # finish (also while the policy loads) and exit 0, so a launch does not call it "process has died".
    stopping: list[str] = []
    for sig in (signal.SIGINT, signal.SIGTERM):
        signal.signal(sig, lambda number, frame: stopping.append(signal.Signals(number).name))
    policy = served_policy(args)
    server = PolicyServer(policy, args.bind, curve_keys=args.curve_keys, serves=args.serves)
    print(f"serving {policy.metadata.get('name')} on {server.address} (Ctrl-C to stop)", file=sys.stderr)
    try:
        server.serve(stop=lambda: bool(stopping))
    finally:
        server.close()
    print(f"vla serve: stopped ({stopping[0] if stopping else 'done'})", file=sys.stderr)
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


def add_serving_parsers(sub) -> None:
    srv = sub.add_parser("serve", help="host a policy over ZeroMQ for many clients")
    add_policy_arguments(srv, default=None, required=True, policy_help="a VLA or LeRobot checkpoint directory",
                         robot_help="--sparse: robot config whose fixed cameras trigger inference")
    srv.add_argument("--bind", default="tcp://127.0.0.1:5555", help="anything but loopback needs --curve-keys")
    srv.add_argument("--curve-keys", default=None, help="directory with server.key_secret (see `vla keys`)")
    srv.add_argument("--serves", default=None, help="the robot this server is for (its ROS namespace, '/' for none): "
                     "its metadata says so and a policy node of another robot refuses it")
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
    sub = parser.add_subparsers(dest="command", required=True, parser_class=CommandParser)
    sub.add_parser("tasks", help="list task ids and their group (single or multi)").set_defaults(func=cmd_tasks)
    add_eval_parsers(sub)
    for name, (module, text) in COMMANDS.items():
        sub.add_parser(name, help=text, module=module, command=name)
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
