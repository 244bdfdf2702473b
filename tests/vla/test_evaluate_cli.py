import json
import subprocess
import sys

import pytest

from vla.cli import main
from vla.evaluate import wilson_interval


def test_wilson_interval_known_values():
    assert wilson_interval(0, 10) == pytest.approx((0.0, 0.2775), abs=1e-4)
    assert wilson_interval(10, 10) == pytest.approx((0.7225, 1.0), abs=1e-4)
    lo, hi = wilson_interval(50, 100)
    assert lo == pytest.approx(0.4038, abs=1e-4) and hi == pytest.approx(0.5962, abs=1e-4)


def test_vla_tasks_lists_ids_with_group(capsys):
    assert main(["tasks"]) == 0
    out = capsys.readouterr()
    lines = out.out.strip().splitlines()
    assert "pick\tsingle" in lines and "tower\tmulti" in lines and len(lines) == 8 + 50
    assert "metaworld/push-v3\tmetaworld/hard\tmt10,mt50" in lines
    assert "metaworld/assembly-v3\tmetaworld/hard\tmt50" in lines
    assert "groups: single, multi, all, metaworld/easy" in out.err


def test_vla_eval_writes_report_and_videos(tmp_path, capsys):
    report_path = tmp_path / "report.json"
    code = main(["eval", "--policy", "scripted", "--tasks", "touch,pick", "--episodes", "2", "--seed", "7",
                 "--report", str(report_path), "--video-dir", str(tmp_path / "videos"), "--videos-per-task", "1",
                 "--image-size", "48", "--quiet"])
    assert code == 0
    report = json.loads(report_path.read_text())
    assert report["policy"] == "scripted"
    assert set(report["tasks"]) == {"touch", "pick"}
    for entry in report["tasks"].values():
        assert set(entry) == {"episodes", "successes", "success_rate", "ci95", "mean_steps"}
        assert entry["episodes"] == 2 and 0 <= entry["ci95"][0] <= entry["success_rate"] <= entry["ci95"][1]
    assert report["overall"] == {"episodes": 4, "successes": 4, "success_rate": 1.0}
    videos = sorted(p.name for p in (tmp_path / "videos").iterdir())
    assert videos == ["pick_seed7_success.mp4", "touch_seed7_success.mp4"]
    import imageio.v3 as iio

    frames = iio.imread(tmp_path / "videos" / videos[0])
    assert frames.shape[1:] == (48, 96, 3)  # both cameras side by side


def test_vla_eval_unknown_task_is_an_error_listing_ids(capsys):
    assert main(["eval", "--tasks", "pick,teleport", "--episodes", "1"]) == 2
    err = capsys.readouterr().err
    assert "unknown task id(s) ['teleport']" in err and "place_in_bowl" in err


def test_vla_entry_point_runs():
    out = subprocess.run([sys.executable, "-m", "vla.cli", "tasks"], capture_output=True, text=True, check=True)
    assert out.stdout.splitlines()[0] == "touch\tsingle"


def test_vla_demo_runs_the_shipped_policy_and_writes_report_and_video(tmp_path):
    assert main(["demo", "--tasks", "push", "--episodes", "1", "--out", str(tmp_path), "--quiet"]) == 0
    report = json.loads((tmp_path / "report.json").read_text())
    assert report["overall"]["episodes"] == 1 and "tiny_sim_single" in report["policy"]
    assert list((tmp_path / "videos").glob("push_seed0_*.mp4"))


def test_a_planner_checkpoint_as_the_action_policy_is_refused_naming_planner(capsys):
    from tests.helpers import REPO

    planner = REPO / "policies" / "tiny_sim_planner"
    if not (planner / "planner.json").is_file():
        pytest.skip("no shipped planner")
    assert main(["eval", "--policy", str(planner), "--tasks", "touch", "--episodes", "1", "--quiet"]) == 2
    err = capsys.readouterr().err
    assert "is a planner checkpoint" in err and f"--planner {planner}" in err
