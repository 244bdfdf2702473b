"""Evaluation: one episode loop (`rollout`), success reports over seeded episodes (`evaluate`), and the
open-loop error on held-out demonstrations (`open_loop_report`).

- `rollout.py`: one episode through the control loop (executor and safety filter), with the loop's
  options, an observer and a perturbation hook: the only episode loop in the project;
- `report.py`: `evaluate` over tasks and seeds, Wilson intervals, JSON reports;
- `open_loop.py`: `vla eval --heldout`.
"""

from vla.evaluate.open_loop import open_loop_report
from vla.evaluate.report import evaluate, summarize, wilson_interval, write_report
from vla.evaluate.rollout import EpisodeResult, check_policy_fits, rollout, write_video

__all__ = ["EpisodeResult", "check_policy_fits", "evaluate", "open_loop_report", "rollout", "summarize",
           "wilson_interval", "write_report", "write_video"]
