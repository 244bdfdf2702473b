"""Checkpoints chosen by rollouts (`vla train --select-episodes`): real closed-loop episodes in a
worker process, on seeds that are never evaluation or demonstration seeds."""

import shutil

import numpy as np
import pytest

from vla.evaluate.select import SELECTION_SEED, CheckpointSelector, SelectionError
from vla.loading import SHIPPED_POLICY
from vla.model.vla import VLAModel, new_model
from vla.train.stream import EVALUATION_SEEDS, STREAM_SEED


def test_selection_seeds_are_neither_evaluation_nor_demonstration_seeds():
    assert SELECTION_SEED not in EVALUATION_SEEDS and EVALUATION_SEEDS.stop <= SELECTION_SEED
    assert SELECTION_SEED + 10_000 < STREAM_SEED  # recorded demonstrations start at 1000, below both


@pytest.fixture(scope="module")
def two_checkpoints(tmp_path_factory):
    """step_1: the shipped policy's architecture with fresh weights (it does not touch the cube);
    step_2: the shipped policy itself (touch 70/100 on seeds 0-99)."""
    root = tmp_path_factory.mktemp("ckpts")
    trained = VLAModel.from_pretrained(SHIPPED_POLICY)
    t = trained.action_tok
    fresh = new_model(trained.config, ["touch the red cube"], np.asarray(t.low), np.asarray(t.high),
                      np.asarray(trained.state_tok.low), np.asarray(trained.state_tok.high))
    fresh.save_pretrained(root / "step_1")
    shutil.copytree(SHIPPED_POLICY, root / "step_2", ignore=shutil.ignore_patterns("*.md", "*.json.bak"))
    return root


def test_the_better_of_two_checkpoints_is_kept_whichever_is_newest(two_checkpoints):
    selector = CheckpointSelector(["touch"], episodes=3)
    try:
        selector.submit(two_checkpoints / "step_2")
        chosen = selector.best(newest=two_checkpoints / "step_1")  # the newest is scored too, then ranked
    finally:
        selector.close()
    scores = selector.report["scores"]
    assert set(scores) == {"step_1", "step_2"}
    assert scores["step_2"]["successes"] > scores["step_1"]["successes"] == 0
    assert chosen == two_checkpoints / "step_2" and selector.report["chosen"] == "step_2"
    assert scores["step_2"]["episodes"] == 3


@pytest.mark.slow
def test_a_checkpoint_that_cannot_be_scored_is_named(tmp_path):
    selector = CheckpointSelector(["touch"], episodes=1)
    try:
        selector.submit(tmp_path / "step_5")  # nothing there
        with pytest.raises(SelectionError, match="step_5"):
            selector.best(newest=tmp_path / "step_5")
    finally:
        selector.close()


def test_bad_selection_settings_are_refused():
    with pytest.raises(ValueError, match="episodes=0"):
        CheckpointSelector(["touch"], episodes=0)
    with pytest.raises(ValueError, match="at least one sim task"):
        CheckpointSelector([], episodes=2)


@pytest.mark.slow
def test_vla_train_scores_each_checkpoint_and_ships_the_chosen_one(tmp_path, capsys):
    import json

    from vla.cli import main

    out = tmp_path / "policy"
    assert main(["train", "--sim-tasks", "touch", "--sim-episodes", "2", "--sim-workers", "1", "--steps", "4",
                 "--checkpoint-every", "2", "--batch-size", "8", "--select-episodes", "1", "--out", str(out),
                 "--quiet"]) == 0, capsys.readouterr().err
    info = json.loads((out / "train_info.json").read_text())
    selection = info["selection"]
    assert set(selection["scores"]) == {"step_0000002", "step_0000004"}
    assert selection["seeds_from"] == SELECTION_SEED and selection["tasks"] == ["touch"]
    assert info["shipped_checkpoint"] == selection["chosen"]
    shipped = out / "checkpoints" / selection["chosen"] / "model.safetensors"
    assert (out / "model.safetensors").read_bytes() == shipped.read_bytes()


def test_selection_needs_tasks_to_score_on(capsys):
    from vla.cli import main

    assert main(["train", "--dataset", "nowhere", "--select-episodes", "2", "--out", "x"]) == 2
    assert "--select-tasks" in capsys.readouterr().err
