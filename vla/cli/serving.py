"""`vla serve`, `vla client` and `vla keys`: the ZeroMQ policy server, a health or metadata probe, CURVE keys."""

from __future__ import annotations

import argparse
import json
import signal
import sys

from vla.cli.policy_args import add_policy_arguments, served_policy
from vla.serving.client import PolicyClient, ServerError
from vla.serving.keys import create_curve_keys
from vla.serving.server import PolicyServer


def cmd_serve(args: argparse.Namespace) -> int:
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
    out = create_curve_keys(args.out, overwrite=args.overwrite)
    print(f"CURVE keys in {out}: give server.key (public) to clients; keep server.key_secret on the server")
    return 0


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
