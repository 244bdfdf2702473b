"""`policy_server`: the launch files' way to start `vla serve`, with the policy found from any folder.

`ros2 launch` runs from whatever folder the user is in, so a relative policy path is not enough.
`--policy` is taken, in order, as a built-in name (`scripted`, `scripted-skills`), as a path (absolute,
or relative to the current folder), as a folder under `<share of vla_ros>/policies/`, then under the
policies shipped beside the vla package; when none exists the process exits with status 2 and says
where it looked. Then it becomes `vla serve` (exec: same process, same exit status); arguments it does
not know pass through to `vla serve`, and the `--ros-args` that launch_ros appends are dropped, all but
the namespace, which becomes `--serves`: the robot this server is for, checked by its policy node.
"""

from __future__ import annotations

import argparse
import os
import shutil
import sys
from pathlib import Path

from vla_ros.parameters import StartupError, share_dir

BUILT_IN = ("scripted", "scripted-skills")
EXIT_NOT_FOUND = 2


def policy_folders() -> list[Path]:
    """Where a policy given by name (a relative path) is looked for, after the current folder."""
    from vla.loading import SHIPPED_POLICY  # a path only: vla.loading imports no model code at import

    share = share_dir()
    return ([share / "policies"] if share else []) + [SHIPPED_POLICY.parent]


def resolve_policy(policy: str, folders: list[Path]) -> str:
    if policy in BUILT_IN:
        return policy
    given = Path(policy).expanduser()
    candidates = [given] + ([] if given.is_absolute() else [folder / given for folder in folders])
    for candidate in candidates:
        if candidate.is_dir():
            return str(candidate.resolve())
    looked = ", ".join(str(c.absolute()) for c in candidates)
    raise StartupError(f"policy {policy!r} not found (looked at {looked}); pass policy:=/absolute/path/to/policy "
                       f"or one of {', '.join(BUILT_IN)}")


def vla_executable() -> str:
    beside = Path(sys.executable).with_name("vla")  # the environment this package runs in first
    found = str(beside) if beside.is_file() else shutil.which("vla")
    if not found:
        raise StartupError("the `vla` command is not installed here; pip install the vla-stack package "
                           "into the Python environment the ROS nodes use")
    return found


def ros_namespace(ros_args: list[str]) -> str | None:
    """The namespace in launch_ros's `--ros-args ... -r __ns:=/robot1` (None when there is none)."""
    for arg in ros_args:
        if arg.startswith("__ns:="):
            return "/" + arg.split(":=", 1)[1].strip("/")
    return None


def main(argv: list[str] | None = None) -> None:
    argv = list(sys.argv[1:] if argv is None else argv)
    namespace = None
    if "--ros-args" in argv:
        argv, ros_args = argv[: argv.index("--ros-args")], argv[argv.index("--ros-args"):]
        namespace = ros_namespace(ros_args)
    parser = argparse.ArgumentParser(prog="policy_server", description=__doc__.splitlines()[0])
    parser.add_argument("--policy", required=True, help="built-in name, policy folder, or name under policies/")
    parser.add_argument("--bind", required=True, help="ZeroMQ address, e.g. tcp://127.0.0.1:5555")
    args, rest = parser.parse_known_args(argv)
    try:
        policy = resolve_policy(args.policy, policy_folders())
        vla = vla_executable()
    except StartupError as exc:
        print(f"policy_server: error: {exc}", file=sys.stderr)
        sys.exit(EXIT_NOT_FOUND)
    # The robot it serves: the namespace launch gives it, so that another robot's policy node refuses it.
    serves = [] if "--serves" in rest else ["--serves", namespace or "/"]
    command = [vla, "serve", "--policy", policy, "--bind", args.bind, *serves, *rest]
    print(f"policy_server: {' '.join(command)}", file=sys.stderr, flush=True)
    os.execv(vla, command)


if __name__ == "__main__":
    main()
