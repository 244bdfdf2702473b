"""Open-loop evaluation: a policy's chunks against held-out demonstrations it never saw (no simulator)."""

from __future__ import annotations

from pathlib import Path
from typing import Any


def open_loop_report(policy_dir: str | Path, heldout: str | Path, decoding: str | None = None,
                     robot: str | None = None, n_action_steps: int | None = None) -> dict[str, Any]:
    """The `vla eval --heldout` report: the policy's open-loop error on demonstrations it never saw (no simulator).
    `robot`: whose actions the dataset holds (None: the dataset's `robot_type`); `n_action_steps`: the
    executed span the error is taken over (None: the checkpoint's)."""
    # deferred: torch; vla.evaluate stays torch-free (`vla eval` of the scripted expert, the ROS benchmarks)
    from vla.model.vla import VLAModel
    from vla.policy import check_decoding_trained
    from vla.train.validate import open_loop_error

    model = VLAModel.from_pretrained(policy_dir)
    check_decoding_trained(Path(policy_dir), decoding or model.config.decoding)  # as a policy load would
    executed = model.config.executed_steps(n_action_steps)
    return {"policy": str(policy_dir), "heldout": str(heldout), "decoding": decoding or model.config.decoding,
            "chunk_size": model.config.chunk_size, "n_action_steps": executed,
            **open_loop_error(model, heldout, decoding, robot=robot, n_action_steps=executed)}
