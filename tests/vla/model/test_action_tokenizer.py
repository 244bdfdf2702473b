"""The action tokenizer on its own: numpy only, no model, no torch (fast; `make mutation` runs it).

The contract under test (vla/model/action_tokenizer.py): x_n = 2 (x - low) / (high - low) - 1, clipped
to [-1, 1], cut into `bins` uniform bins; bin b is token id first_id + b; decoding gives the bin centre.
"""

import json

import numpy as np
import pytest

from vla.model.action_tokenizer import ActionTokenizer

# Ranges that are exact in binary, so bin edges can be asserted exactly; low != -high on purpose.
LOW, HIGH = np.array([0.0, -1.0, -8.0]), np.array([4.0, 1.0, 0.0])


def tok(bins=4, first_id=100, low=LOW, high=HIGH) -> ActionTokenizer:
    return ActionTokenizer(low, high, bins=bins, first_id=first_id)


def test_bins_at_edges_centres_and_beyond_the_range():
    t = tok()
    # Per dimension: the values at the low end, a quarter, half, three quarters, the high end.
    values = np.array([LOW + f * (HIGH - LOW) for f in (0.0, 0.25, 0.5, 0.75, 1.0)])
    assert t.to_bins(values).tolist() == [[0] * 3, [1] * 3, [2] * 3, [3] * 3, [3] * 3]
    just_below = np.array([LOW + f * (HIGH - LOW) - 1e-9 for f in (0.25, 0.5, 0.75)])
    assert t.to_bins(just_below).tolist() == [[0] * 3, [1] * 3, [2] * 3]
    # Outside [low, high]: clipped to the end bins, never wrapped.
    assert t.to_bins(np.array([LOW - 100.0, HIGH + 100.0])).tolist() == [[0] * 3, [3] * 3]
    assert t.to_bins(values).dtype == np.int64


def test_bin_centres_and_token_ids():
    t = tok()
    assert np.array_equal(t.bin_width, (HIGH - LOW) / 4)
    centres = t.from_bins(np.array([[0, 1, 2], [3, 3, 0]]))
    expected = np.array([[0.5, -0.25, -3.0], [3.5, 0.75, -7.0]])
    assert np.array_equal(centres, expected)
    ids = t.encode(expected)
    assert ids.tolist() == [[100, 101, 102], [103, 103, 100]]
    assert np.array_equal(t.decode(ids), expected)


def test_round_trip_within_half_a_bin_for_values_inside_the_statistics():
    rng = np.random.default_rng(0)
    t = tok(bins=256, first_id=1000)
    values = rng.uniform(LOW, HIGH, size=(5000, 3))
    ids = t.encode(values)
    assert ids.min() >= 1000 and ids.max() <= 1255
    assert np.all(np.abs(t.decode(ids) - values) <= t.bin_width / 2 + 1e-12)


def test_ids_and_bins_outside_the_action_range_are_an_error():
    t = tok()
    assert t.decode(np.array([100, 103, 101])).tolist() == [0.5, 0.75, -5.0]  # both ends of the range are valid
    for ids in ([99, 100, 101], [100, 104, 101], [-1]):
        with pytest.raises(ValueError, match=r"token ids outside the action range \[100, 104\)"):
            t.decode(np.array(ids))
    assert t.from_bins(np.array([0, 3, 3])).shape == (3,)
    for bins in ([-1, 0, 0], [0, 4, 0]):
        with pytest.raises(ValueError, match=r"bins must lie in \[0, 4\); got range \[" + str(min(bins))):
            t.from_bins(np.array(bins))


def test_empty_batches_and_a_single_bin():
    t = tok()
    assert t.decode(np.zeros((0, 3), np.int64)).shape == (0, 3)
    assert t.from_bins(np.zeros((0, 3), np.int64)).shape == (0, 3)
    one = tok(bins=1, first_id=0)  # one bin: every value is its centre, (low + high) / 2
    assert one.encode(np.array([LOW, HIGH])).tolist() == [[0] * 3, [0] * 3]
    assert np.array_equal(one.decode(np.zeros(3, np.int64)), (LOW + HIGH) / 2)


def test_a_dimension_that_never_moves_decodes_to_its_value():
    t = ActionTokenizer(np.array([0.3, -1.0]), np.array([0.3, 1.0]), bins=256, first_id=0)
    assert t.high[0] == pytest.approx(0.3 + 1e-6, abs=1e-12) and t.high[1] == 1.0
    assert np.all(np.isfinite(t.bin_width)) and t.bin_width[0] > 0
    out = t.decode(t.encode(np.array([[0.3, 0.0]])))
    assert abs(out[0, 0] - 0.3) <= 1e-6 / 512 + 1e-12


def test_statistics_must_be_matching_vectors():
    for low, high in ((np.zeros(3), np.ones(2)), (np.zeros((2, 3)), np.ones((2, 3))), (np.zeros(()), np.ones(()))):
        with pytest.raises(ValueError) as info:
            ActionTokenizer(low, high, bins=8, first_id=0)
        assert f"low {low.shape} and high {high.shape} must be equal 1-D shapes" in str(info.value)
    t = ActionTokenizer([0, 0], [1, 2], bins=8, first_id=0)  # lists become float arrays
    assert t.dim == 2 and t.low.dtype == np.float64 and t.high.dtype == np.float64


def test_to_dict_round_trips_through_json():
    t = tok(bins=256, first_id=32000)
    data = json.loads(json.dumps(t.to_dict()))
    assert data == {"low": LOW.tolist(), "high": HIGH.tolist(), "bins": 256, "first_id": 32000}
    back = ActionTokenizer.from_dict({**data, "bins": "256", "first_id": 32000.0})
    assert back.to_dict() == t.to_dict() and type(back.bins) is int and type(back.first_id) is int
