"""`vla bench reuse` re-encodes exactly the asked share of patches, and refuses rates it cannot mean."""

import json

import pytest

from vla.cli import main


def test_reuse_rows_recompute_the_asked_share_of_patches(tmp_path, capsys):
    out = tmp_path / "reuse.json"
    assert main(["bench", "reuse", "--size", "tiny", "--rates", "0,0.25,1", "--repeats", "1", "--device", "cpu",
                 "--report", str(out)]) == 0
    report = json.loads(out.read_text())
    assert report["device"].startswith("CPU") and report["patch_grid"] == 8
    rows = report["rows"]
    assert set(rows) == {"dense", "reuse@0", "reuse@0.25", "reuse@1"}
    # two cameras of 8 x 8 patches: nothing, a quarter, everything re-encoded per step
    assert [rows[k]["patches_recomputed"] for k in ("reuse@0", "reuse@0.25", "reuse@1")] == [0, 32, 128]
    assert all(rows[k]["median_ms"] > 0 and rows[k]["speedup"] > 0 for k in rows if k != "dense")


@pytest.mark.parametrize("rates", ["0.2,x", "1.5"])
def test_bad_rates_are_named(rates):
    with pytest.raises(SystemExit, match="--rates"):
        main(["bench", "reuse", "--size", "tiny", "--rates", rates])
