"""Takeover episodes (issue 29's DAgger rounds): how often the expert finishes from where a policy left the
arm, and that it still solves every task alone.

For each single-step task: the expert alone on `--expert-episodes` seeds from 1000 (the demonstrations'
seeds), then `--episodes` takeover episodes from seed 2,000,000: the policy drives the first ticks through
the control loop (`vla.evaluate.takeover.PolicyDetour`), the expert takes over; each is kept, failed
by the expert, or dropped with its reason.

    OMP_NUM_THREADS=1 python scripts/takeover.py --policy policies/tiny_sim_single --report out/bench/takeover.json
"""

from __future__ import annotations

import argparse
import json
import time
from collections import Counter

from sim import resolve_tasks
from vla.evaluate import write_report
from vla.evaluate.takeover import TAKEOVER_SEED, PolicyDetour
from vla.train.rollouts import _rollout


def outcome(result) -> str:
    return "kept" if isinstance(result, dict) else "expert failed" if result is None else result


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--policy", default="policies/tiny_sim_single")
    parser.add_argument("--tasks", default="single")
    parser.add_argument("--episodes", type=int, default=20, help="takeover episodes per task")
    parser.add_argument("--expert-episodes", type=int, default=100, help="expert-alone episodes per task")
    parser.add_argument("--report", default=None)
    args = parser.parse_args()
    detour = PolicyDetour(args.policy)
    report: dict = {"command": f"python scripts/takeover.py --policy {args.policy} --tasks {args.tasks} "
                               f"--episodes {args.episodes} --expert-episodes {args.expert_episodes}",
                    "expert_alone": {}, "takeover": {}}
    start = time.perf_counter()
    for task in resolve_tasks(args.tasks):
        alone = [_rollout((task, s, None, 0.0, False))[2] for s in range(1000, 1000 + args.expert_episodes)]
        report["expert_alone"][task] = sum(isinstance(r, dict) for r in alone)
        taken = Counter(outcome(_rollout((task, s, None, 1.0, False, detour))[2])
                        for s in range(TAKEOVER_SEED, TAKEOVER_SEED + args.episodes))
        report["takeover"][task] = dict(taken)
        print(task, report["expert_alone"][task], dict(taken), flush=True)
    report["seconds"] = round(time.perf_counter() - start, 1)
    print(json.dumps({k: report[k] for k in ("expert_alone", "takeover", "seconds")}, indent=2))
    if args.report:
        write_report(report, args.report, quiet=True)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
