"""`vla` command line: the composition root that wires policies, the simulator, servers and reports.

Every command lives in this package: `rollouts` (tasks, eval, demo) and `serving` (serve, client, keys) are
parsed at once; `train`, `record`, `dataset` and `arm-mask` (COMMANDS) and each `vla bench <name>` (vla.cli.bench's
BENCHMARKS) have a module of their own, with `add_arguments(parser)` and `run(args) -> int`, imported only
when that command is parsed (vla.cli.lazy), so that `vla tasks` or `vla client` do not pay for torch. The
policy, sparsity and planner flags, and the functions that read them into vla.loading's registry, are
`policy_args`'s. Domain packages (train, data, planner, model, bench, ...) import nothing from here.
"""

from __future__ import annotations

import argparse
import sys

from vla.cli.bench import add_bench_parsers
from vla.cli.lazy import LazyParser
from vla.cli.rollouts import add_eval_parsers, cmd_tasks
from vla.cli.serving import add_serving_parsers
from vla.loading import SHIPPED_POLICY  # noqa: F401 - re-exported: `from vla.cli import SHIPPED_POLICY`
from vla.robot import ConfigError

# name -> (module, one-line help). The module declares the flags in `add_arguments(parser)` and runs the
# command in `run(args) -> int`.
COMMANDS: dict[str, tuple[str, str]] = {
    "record": ("vla.cli.record", "record scripted-expert demonstrations into a LeRobot v3.0 dataset"),
    "train": ("vla.cli.train", "fine-tune a VLA on a LeRobot dataset"),
    "dataset": ("vla.cli.dataset", "inspect LeRobot datasets"),
    "arm-mask": ("vla.cli.arm_mask", "learn which camera patches the arm covers (the event trigger's arm discount)"),
}


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="vla", description=__doc__)
    sub = parser.add_subparsers(dest="command", required=True, parser_class=LazyParser)
    sub.add_parser("tasks", help="list task ids and their group (single or multi)").set_defaults(func=cmd_tasks)
    add_eval_parsers(sub)
    for name, (module, text) in COMMANDS.items():
        sub.add_parser(name, help=text, module=module)
    add_serving_parsers(sub)
    add_bench_parsers(sub.add_parser("bench", help="benchmarks (scripts, not tests): vla bench NAME --help"))
    return parser


def main(argv: list[str] | None = None) -> int:
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
