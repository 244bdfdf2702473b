"""`vla bench oracle-mlp`: what the demonstrations teach a plain MLP that sees every object's position
(vla.bench.oracle). Its sim episodes come from the same source as `vla train --sim-tasks` (`sim_source`,
`--stream` included)."""

from __future__ import annotations

import argparse
import json

from sim import resolve_tasks
from vla.bench.oracle import bench_oracle
from vla.cli.bench import add_report_argument
from vla.cli.train import add_stream_arguments, sim_source
from vla.evaluate import write_report


def add_arguments(parser: argparse.ArgumentParser) -> None:
    """`vla bench oracle-mlp` flags."""
    source = parser.add_mutually_exclusive_group()
    source.add_argument("--dataset", help="a LeRobot dataset recorded with `vla record`")
    source.add_argument("--sim-episodes", type=int, default=None,
                        help="instead: this many expert episodes per task rolled out in memory (as vla record keeps)")
    parser.add_argument("--tasks", default="single")
    parser.add_argument("--train-steps", type=int, default=4000)
    parser.add_argument("--batch-size", type=int, default=256)
    parser.add_argument("--episodes", type=int, default=20, help="closed-loop episodes per task (seeds 0..N-1)")
    parser.add_argument("--seed", type=int, default=0, help="training seed")
    parser.add_argument("--chunk-size", type=int, default=20)
    parser.add_argument("--n-action-steps", type=int, default=10)
    # `sim_workers`: the name `sim_source` reads (`vla train --sim-workers`); the flag stays --workers
    parser.add_argument("--workers", dest="sim_workers", metavar="WORKERS", type=int, default=None,
                        help="--sim-episodes: processes rolling out the expert (default: one per core)")
    add_stream_arguments(parser, needs="--sim-episodes")
    parser.add_argument("--takeover-rounds", type=int, default=0, metavar="R",
                        help="--sim-episodes: then R DAgger rounds: the MLP just trained drives the first ticks of "
                             "new episodes, the expert takes over, they join the demonstrations, it trains again")
    parser.add_argument("--takeover-episodes", type=int, default=100, metavar="N",
                        help="--takeover-rounds: episodes per task each round adds")
    parser.add_argument("--quiet", action="store_true")
    add_report_argument(parser)


def run(args: argparse.Namespace) -> int:
    if not args.dataset and not args.sim_episodes:
        raise ValueError("vla bench oracle-mlp needs --dataset DIR or --sim-episodes N")
    if args.dataset and args.stream:
        raise ValueError("--stream streams expert episodes (--sim-episodes N to start); a --dataset is read as it is")
    dataset = args.dataset
    if args.sim_episodes:  # the oracle reads no camera
        dataset = sim_source(args, resolve_tasks(args.tasks), args.sim_episodes, images=False)
    report = bench_oracle(dataset, resolve_tasks(args.tasks), args.train_steps, args.batch_size,
                          args.episodes, args.seed, args.chunk_size, args.n_action_steps, progress=not args.quiet,
                          takeover_rounds=args.takeover_rounds, takeover_episodes=args.takeover_episodes,
                          workers=args.sim_workers)
    if args.report:
        write_report(report, args.report, quiet=True)
    print(json.dumps(report, indent=2))
    return 0
