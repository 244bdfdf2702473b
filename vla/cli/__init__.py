"""`vla` command line: the composition root that wires policies, the simulator, servers and reports.

Every command lives in this package, one module per family: `rollouts` (tasks, eval, demo), `serving`
(serve, client, keys), `train` and `data` (record, dataset). The light ones are parsed at once; `train`,
`record` and `dataset` (COMMANDS) are imported only when that command is parsed, so that `vla tasks`
or `vla client` do not pay for torch. Each `vla bench <name>` still owns its flags and its run in its
vla.bench module (to move here next: issue 31). Policies are resolved by vla.loading (which declares
the policy, sparsity and planner flags it reads). Domain packages (train, data, planner, model, ...)
import nothing from here.
"""

from __future__ import annotations

import argparse
import importlib
import sys

from vla.cli.rollouts import add_eval_parsers, cmd_tasks
from vla.cli.serving import add_serving_parsers
from vla.loading import SHIPPED_POLICY  # noqa: F401 - re-exported: `from vla.cli import SHIPPED_POLICY`

# name -> (module, one-line help). The module declares the flags in `add_<name>_arguments(parser)`
# and runs the command in `run_<name>(args) -> int`.
COMMANDS: dict[str, tuple[str, str]] = {
    "record": ("vla.cli.data", "record scripted-expert demonstrations into a LeRobot v3.0 dataset"),
    "train": ("vla.cli.train", "fine-tune a VLA on a LeRobot dataset"),
    "dataset": ("vla.cli.data", "inspect LeRobot datasets"),
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
