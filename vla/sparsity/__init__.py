"""Event-triggered visual sparsity: detect changed patches, re-encode only those, infer only on change."""

from vla.sparsity.events import EventDetector, EventThresholds

__all__ = ["EventDetector", "EventThresholds"]
