"""Choose checkpoints by rollouts, not by loss (issue 29; robomimic, arXiv 2108.03298, found the
lowest-validation-loss checkpoint 50-100% worse than the best by rollouts).

While training goes on, each checkpoint folder is scored by a worker process (the spare core) on a
few seeded closed-loop episodes of the sim tasks, through the same `evaluate` as `vla eval`; at the
end the training loop ships the best (ties: the newest). The seeds start at SELECTION_SEED: never an
evaluation seed (0-99, 31337+) nor a demonstration's (1000+ recorded, 1,000,000+ streamed), so the
selection does not peek at the figures it will be judged by.

A worker that dies is reported (`SelectionError`, naming the checkpoint it was scoring): the
checkpoints stay on disk, and training never silently ships an unscored folder as "the best".
"""

from __future__ import annotations

import multiprocessing as mp
import traceback
from pathlib import Path
from typing import Any

from sim import make_env
from vla.evaluate.report import evaluate

SELECTION_SEED = 500_000


class SelectionError(RuntimeError):
    """A checkpoint could not be scored."""


def score_checkpoint(path: str, task_ids: list[str], episodes: int, seed: int) -> dict[str, Any]:
    """Closed-loop successes of the policy folder `path` on `episodes` seeds of each task."""
    import torch  # deferred: torch and the model load in the scoring worker only, not where this is imported

    from vla.policy import VLAPolicy  # deferred: as torch

    torch.set_num_threads(1)  # the spare core; training keeps the rest
    policy = VLAPolicy.from_pretrained(path)
    report = evaluate(Path(path).name, task_ids, make_env, lambda env: policy, episodes, seed=seed, progress=False)
    return {"successes": report["overall"]["successes"], "episodes": report["overall"]["episodes"],
            "per_task": {t: r["successes"] for t, r in report["tasks"].items()}}


def _score(job: tuple[str, list[str], int, int]) -> tuple[str, dict[str, Any] | None, str | None]:
    path, task_ids, episodes, seed = job
    try:
        return path, score_checkpoint(path, task_ids, episodes, seed), None
    except Exception:  # noqa: BLE001 - reported to the trainer with the checkpoint it was scoring
        return path, None, traceback.format_exc()


class CheckpointSelector:
    """`submit(path)` after each checkpoint is saved; `best(newest)` at the end waits for the scores and
    returns the folder to ship. `report` (for train_info.json) lists every score."""

    def __init__(self, task_ids: list[str], episodes: int, seed: int = SELECTION_SEED):
        if episodes < 1:
            raise ValueError(f"selection episodes={episodes}; expected at least 1 per task")
        if not task_ids:
            raise ValueError("checkpoint selection needs at least one sim task to score on")
        self.task_ids, self.episodes, self.seed = list(task_ids), episodes, seed
        self._pool = mp.get_context("spawn").Pool(1)  # fresh interpreter: no forked torch threads or GL
        self._pending: list[tuple[str, Any]] = []
        self.scores: dict[str, dict[str, Any]] = {}
        self.report: dict[str, Any] = {"tasks": self.task_ids, "episodes_per_task": episodes, "seeds_from": seed,
                                       "scores": {}, "chosen": None}

    def submit(self, path: Path) -> None:
        self._pending.append((str(path), self._pool.apply_async(
            _score, ((str(path), self.task_ids, self.episodes, self.seed),))))

    def _collect(self) -> None:
        for path, result in self._pending:
            _, score, error = result.get()
            if error is not None:
                raise SelectionError(f"scoring checkpoint {path} failed; its traceback:\n{error}")
            self.scores[path] = score
            self.report["scores"][Path(path).name] = score
        self._pending = []

    def best(self, newest: Path) -> Path:
        """The best-scored checkpoint (ties: the newest of them); `newest` if it was never submitted."""
        self._collect()
        if str(newest) not in self.scores:
            self.submit(newest)
            self._collect()
        ranked = sorted(self.scores, key=lambda p: (self.scores[p]["successes"], _step(p)))
        chosen = Path(ranked[-1])
        self.report["chosen"] = chosen.name
        return chosen

    def close(self) -> None:
        self._pool.terminate()
        self._pool.join()


def _step(path: str) -> int:
    """The step of a `step_<N>` folder (0 for any other name)."""
    name = Path(path).name
    return int(name.split("_")[1]) if name.startswith("step_") and name.split("_")[1].isdigit() else 0
