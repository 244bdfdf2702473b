"""Action tokenizer: continuous values <-> dedicated vocabulary tokens, and the exact inverse.

Contract (after OpenVLA's): each dimension d is normalized with the dataset's statistics,
x_n = 2 (x - low_d) / (high_d - low_d) - 1 with low/high the 1st/99th percentiles, clipped
to [-1, 1], and cut into `bins` uniform bins; bin b of any dimension is token id
`first_id + b`. Decoding maps a bin to its centre, so the round trip is within half a bin
width for every value inside [low, high]. The same value tokens discretize the joint state.
Works on token ids, never on decoded strings.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np


@dataclass
class ActionTokenizer:
    low: np.ndarray  # (D,) value mapped to -1
    high: np.ndarray  # (D,) value mapped to +1
    bins: int
    first_id: int  # token id of bin 0; bins occupy [first_id, first_id + bins)

    def __post_init__(self) -> None:
        self.low = np.asarray(self.low, dtype=np.float64)
        self.high = np.asarray(self.high, dtype=np.float64)
        if self.low.shape != self.high.shape or self.low.ndim != 1:
            raise ValueError(f"low {self.low.shape} and high {self.high.shape} must be equal 1-D shapes")
        # A dimension that never moves gets a tiny range instead of a division by zero.
        self.high = np.maximum(self.high, self.low + 1e-6)

    @property
    def dim(self) -> int:
        return self.low.shape[0]

    @property
    def bin_width(self) -> np.ndarray:
        """Width of one bin per dimension, in the values' units."""
        return (self.high - self.low) / self.bins

    def to_bins(self, values: np.ndarray) -> np.ndarray:
        """(..., D) values -> (..., D) integer bins in [0, bins)."""
        x = 2.0 * (np.asarray(values, dtype=np.float64) - self.low) / (self.high - self.low) - 1.0
        x = np.clip(x, -1.0, 1.0)
        return np.minimum(np.floor((x + 1.0) / 2.0 * self.bins), self.bins - 1).astype(np.int64)

    def from_bins(self, bins: np.ndarray) -> np.ndarray:
        """(..., D) integer bins -> (..., D) values at the bin centres."""
        b = np.asarray(bins)
        if b.min(initial=0) < 0 or b.max(initial=0) >= self.bins:
            raise ValueError(f"bins must lie in [0, {self.bins}); got range [{b.min()}, {b.max()}]")
        x = (b + 0.5) / self.bins * 2.0 - 1.0
        return self.low + (x + 1.0) / 2.0 * (self.high - self.low)

    def encode(self, values: np.ndarray) -> np.ndarray:
        """(..., D) values -> (..., D) token ids."""
        return self.to_bins(values) + self.first_id

    def decode(self, token_ids: np.ndarray) -> np.ndarray:
        """(..., D) token ids -> (..., D) values; ids outside the action range are an error."""
        ids = np.asarray(token_ids)
        lo, hi = self.first_id, self.first_id + self.bins
        if ids.min(initial=lo) < lo or ids.max(initial=lo) >= hi:
            raise ValueError(f"token ids outside the action range [{self.first_id}, {self.first_id + self.bins})")
        return self.from_bins(ids - self.first_id)

    def to_dict(self) -> dict:
        return {"low": self.low.tolist(), "high": self.high.tolist(), "bins": self.bins, "first_id": self.first_id}

    @classmethod
    def from_dict(cls, data: dict) -> ActionTokenizer:
        return cls(np.array(data["low"]), np.array(data["high"]), int(data["bins"]), int(data["first_id"]))
