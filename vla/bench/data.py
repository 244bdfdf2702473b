"""`vla bench data`: recording throughput, size on disk and loader throughput on this machine."""

from __future__ import annotations

import os
import platform
import tempfile
import time
from pathlib import Path

from vla.data.dataset import open_dataset
from vla.data.record import record


def _size_mb(root: Path) -> float:
    return sum(p.stat().st_size for p in root.rglob("*") if p.is_file()) / 2**20


def _loader_rate(root: Path, chunk_size: int, batch_size: int, num_workers: int, batches: int) -> float:
    ds = open_dataset(root, chunk_size=chunk_size)
    loader = ds.loader(batch_size=batch_size, shuffle=True, num_workers=num_workers)
    it = iter(loader)
    next(it)  # warm-up: workers start, decoders open
    start, samples = time.perf_counter(), 0
    for _ in range(batches):
        try:
            batch = next(it)
        except StopIteration:
            it = iter(loader)
            batch = next(it)
        samples += len(batch["task"])
    return samples / (time.perf_counter() - start)


def bench_data(tasks: list[str], episodes: int, image_size: int | None = None, chunk_size: int = 10,
               batch_size: int = 32, batches: int = 20) -> dict:
    """Record `episodes` per task as video and as images, then time the loader on each."""
    report: dict = {"tasks": tasks, "episodes_per_task": episodes, "image_size": image_size,
                    "machine": f"{platform.machine()}, {os.cpu_count()} cores", "storage": {}}
    with tempfile.TemporaryDirectory() as tmp:
        for storage in ("video", "images"):
            root = Path(tmp) / storage
            start = time.perf_counter()
            summary = record(tasks, episodes, root, storage=storage, image_size=image_size, progress=False)
            seconds = time.perf_counter() - start
            size = _size_mb(root)
            report["storage"][storage] = {
                "episodes": summary["episodes"],
                "frames": summary["frames"],
                "record_seconds": round(seconds, 2),
                "record_frames_per_s": round(summary["frames"] / seconds, 1),
                "size_mb": round(size, 2),
                "size_mb_per_100_episodes": round(100 * size / summary["episodes"], 1),
                "loader_samples_per_s": {
                    f"workers_{w}": round(_loader_rate(root, chunk_size, batch_size, w, batches), 1) for w in (0, 2)
                },
            }
    report["loader"] = {"chunk_size": chunk_size, "batch_size": batch_size, "batches": batches}
    return report
