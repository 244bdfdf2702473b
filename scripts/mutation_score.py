"""Mutation score per module from the last `mutmut run`, checked against tests/mutation/EQUIVALENT.md.

Usage (after `mutmut run`, from the repository root; `make mutation` does both):
    python scripts/mutation_score.py [--min 90]

A mutant counts as killed when a test failed on it or ran past mutmut's timeout (the test blocked: that
is a detection too, as mutmut's own score has it). Every survivor must be listed in EQUIVALENT.md with
a reason; the exit status is 1 when one is not, or when the score is under --min, so the list cannot
go stale silently (mutant names are numbered per function: a changed function renumbers its mutants).
"""

from __future__ import annotations

import argparse
import re
import subprocess
import sys
from collections import defaultdict
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
EQUIVALENT = ROOT / "tests" / "mutation" / "EQUIVALENT.md"
DETECTED = {"killed", "timeout"}


def results() -> dict[str, str]:
    """{mutant name: status} for every mutant of the last run."""
    out = subprocess.run([str(Path(sys.executable).parent / "mutmut"), "results", "--all", "true"], cwd=ROOT,
                         capture_output=True, text=True, check=True).stdout
    found = dict(re.findall(r"^\s*(\S+__mutmut_\d+): (.+?)\s*$", out, flags=re.MULTILINE))
    if not found:
        sys.exit("mutation_score: no mutants found; run `mutmut run` first (make mutation)")
    return found


def listed_equivalents() -> set[str]:
    """Mutant names in EQUIVALENT.md: the first `backquoted` name of each list item."""
    return set(re.findall(r"^- `(\S+__mutmut_\d+)`", EQUIVALENT.read_text(), flags=re.MULTILINE))


def module_of(mutant: str) -> str:
    """vla.control.safety.xǁSafetyFilterǁcheck__mutmut_3 -> vla/control/safety.py"""
    return mutant.split(".x")[0].replace(".", "/") + ".py"


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--min", type=float, default=90.0, help="lowest acceptable score in percent (default 90)")
    args = parser.parse_args()
    status = results()
    equivalent = listed_equivalents()
    by_module: dict[str, list[str]] = defaultdict(list)
    for name in status:
        by_module[module_of(name)].append(name)
    unexplained, stale = [], sorted(equivalent - set(status))
    print(f"{'module':34} {'killed':>7} {'total':>6} {'score':>7}  survivors (equivalent / unexplained)")
    killed_all = 0
    for module in sorted(by_module):
        names = by_module[module]
        killed = sum(status[n] in DETECTED for n in names)
        survivors = [n for n in names if status[n] not in DETECTED]
        explained = [n for n in survivors if n in equivalent]
        unexplained += [f"{n}: {status[n]}" for n in survivors if n not in equivalent]
        killed_all += killed
        print(f"{module:34} {killed:7d} {len(names):6d} {100 * killed / len(names):6.1f}%  "
              f"{len(explained)} / {len(survivors) - len(explained)}")
    total = len(status)
    score = 100 * killed_all / total
    print(f"{'all':34} {killed_all:7d} {total:6d} {score:6.1f}%  "
          f"{len(equivalent & set(status))} equivalent (tests/mutation/EQUIVALENT.md)")
    ok = True
    if unexplained:
        ok = False
        print("\nSurvivors neither killed nor listed in tests/mutation/EQUIVALENT.md (see `mutmut show NAME`):")
        print("\n".join(f"  {u}" for u in unexplained))
    if stale:
        print("\nListed in EQUIVALENT.md but not a survivor of this run (killed now, or renumbered):")
        print("\n".join(f"  {s}: {status.get(s, 'no such mutant')}" for s in stale))
    if score < args.min:
        ok = False
        print(f"\nscore {score:.1f}% is under the minimum of {args.min:.0f}%")
    return 0 if ok else 1


if __name__ == "__main__":
    sys.exit(main())
