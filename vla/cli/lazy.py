"""The one lazy parser of the `vla` commands and the `vla bench` benchmarks.

A command's module (`vla.cli.train`, `vla.cli.bench.gpu`, ...) has `add_arguments(parser)`, which declares
its flags, and `run(args) -> int`, which runs it and returns the exit status. The module is imported only
when its command is parsed (or its help is asked for), so that `vla tasks` or `vla client` do not pay for
torch.
"""

from __future__ import annotations

import argparse
import importlib


class LazyParser(argparse.ArgumentParser):
    """A command's parser: its module adds the flags and the run function the first time it parses."""

    def __init__(self, *args, module: str | None = None, **kwargs):
        super().__init__(*args, **kwargs)
        self.module, self.loaded = module, False

    def parse_known_args(self, args=None, namespace=None):
        if self.module is None:  # a parser built at once (`vla eval`, a subcommand of `vla dataset`)
            return super().parse_known_args(args, namespace)
        if not self.loaded:  # once: the module is imported and its flags added
            owner = importlib.import_module(self.module)
            owner.add_arguments(self)
            self.set_defaults(func=owner.run)
            self.loaded = True
        namespace, extras = super().parse_known_args(args, namespace)
        if extras:  # said here, with this command's usage, rather than by `vla` with its own
            self.error(f"unrecognized arguments: {' '.join(extras)} (see {self.prog} --help)")
        return namespace, extras
