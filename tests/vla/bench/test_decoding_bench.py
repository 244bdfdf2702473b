"""`vla bench decoding` times every action layout on one backbone, each in the modes it has."""

from tests.helpers import SHIPPED_POLICY
from vla.bench.decoding import bench_decoding


def test_every_layout_is_timed_in_its_own_modes_and_the_policy_keeps_its_weights():
    report = bench_decoding(SHIPPED_POLICY, repeats=1, device="cpu")
    rows = {(r["action_head"], r["action_tokens"], r["mode"]): r for r in report["layouts"]}
    assert set(rows) == {("bins", "per_dim", "parallel"), ("bins", "per_dim", "autoregressive"),
                         ("bins", "per_step", "parallel"), ("continuous", "per_step", "parallel")}
    assert [r["action_positions"] for r in report["layouts"]] == [160, 160, 20, 20]  # K = 20, D = 8
    trained = [k for k, r in rows.items() if r["weights"] == "trained"]
    assert trained == [("continuous", "per_step", "parallel")]  # the shipped policy's own layout
    assert all(r["median_ms"] > 0 for r in rows.values())


def test_without_a_policy_every_layout_is_fresh():
    report = bench_decoding(None, repeats=1, device="cpu")
    assert {r["weights"] for r in report["layouts"]} == {"random"} and len(report["layouts"]) == 4
