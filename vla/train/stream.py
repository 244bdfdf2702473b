"""Fresh expert demonstrations streamed into training while it runs: many scenes, each seen a few times.

A fixed set of episodes read for many epochs is what a learner overfits: in docs/BENCHMARKS.md's
oracle rows the number of distinct scenes, not the number of steps, sets success. Here
demonstrations are cheap (the scripted expert rolls out about 90 frames/s on one core) and
training samples dear (the tiny VLA trains at 20-40 samples/s on this CPU), so worker processes
keep running the expert on new seeds while training samples from a buffer of the newest frames:

    SimStream: warm-up episodes (statistics, vocabulary, the buffer's first frames)
      -> worker processes: expert episodes on seeds from STREAM_SEED up, never an evaluation seed
      -> a queue of a few episodes (a worker waits, idle, while training needs no more)
      -> StreamBuffer: `capacity` frames; each is drawn `reuse` times, then its slot takes a new one

So training reads `reuse` samples per demonstrated frame whatever its length, and the buffer's
capacity sets how many episodes one batch mixes. When fewer than half the buffer's slots hold
frames still to be drawn, training waits for the workers (the wait is counted in train_info.json);
when a worker dies or nothing arrives for `stall_s`, it stops with `StreamError` naming why,
the checkpoints written so far kept. A frame is never drawn more than `reuse` times to keep going.
The order in which episodes arrive depends on the machine's load, so a streamed run is not
repeatable step for step as a fixed set's is.
"""

from __future__ import annotations

import multiprocessing as mp
import queue as queues
import time
import traceback
from typing import Any

import numpy as np
import torch

from vla.train.data import chunk_indices, relative_quantiles
from vla.train.rollouts import SimDemos, _rollout, episode_images
from vla.types import ACTION, OBS_IMAGES_PREFIX, TASK

STREAM_SEED = 1_000_000  # streamed scenes start here
EVALUATION_SEEDS = range(0, 100_000)  # every seed this project evaluates on (0-99, 31337+) lies here
QUEUED_PER_WORKER = 2  # episodes a worker may have waiting: enough to never starve a step


class StreamError(RuntimeError):
    """The stream cannot feed training: a worker died, or nothing arrived in time."""


def _worker(out, stop, task_ids: list[str], robot: str | None, seeds: dict[str, int], stride: int,
            image_size: int | None, cameras: list[str]) -> None:
    """Roll out the expert on seeds `seeds[t]`, `+stride`, ... of each task in turn until `stop`;
    send ("episode", task, seed, arrays) with the images resized for the cache, or ("failed", task, seed)."""
    torch.set_num_threads(1)  # one core per worker; training has the rest
    try:
        while not stop.is_set():
            for task_id in task_ids:
                seed, seeds[task_id] = seeds[task_id], seeds[task_id] + stride
                _, _, arrays = _rollout((task_id, seed, robot, 0.0, image_size is not None))
                if arrays is None:
                    message = ("failed", task_id, seed)
                else:
                    if image_size is not None:
                        arrays["images"] = _images(arrays, cameras, image_size)
                    message = ("episode", task_id, seed, arrays)
                while not stop.is_set():
                    try:
                        out.put(message, timeout=0.5)
                        break
                    except queues.Full:
                        continue
                if stop.is_set():
                    return
    except Exception:  # noqa: BLE001 - the trainer reports it, naming the worker's traceback
        out.put(("error", traceback.format_exc()))


def _images(arrays: dict[str, np.ndarray], cameras: list[str], size: int) -> np.ndarray:
    """The episode's frames at cache size, its full-size camera frames dropped (they travel no further)."""
    images = episode_images(arrays, cameras, size).numpy()
    for c in cameras:
        del arrays[OBS_IMAGES_PREFIX + c]
    return images


class SimStream(SimDemos):
    """`SimDemos` warm-up episodes, then fresh ones streamed from worker processes while training reads them.

    The warm-up (`episodes` per task, rolled out on every core before training) gives the statistics
    and the instructions a new model is built from, and the buffer's first frames."""

    def __init__(self, task_ids: list[str], episodes: int, robot: str | None = None, seed: int = STREAM_SEED,
                 workers: int | None = None, progress: bool = True, images: bool = True, capacity: int = 60_000,
                 reuse: int = 4, stream_workers: int = 1, stall_s: float = 300.0):
        if seed < EVALUATION_SEEDS.stop:
            raise ValueError(f"stream seed {seed}: streamed scenes must not be evaluation scenes (seeds below "
                             f"{EVALUATION_SEEDS.stop}); expected a seed of at least {EVALUATION_SEEDS.stop}")
        if reuse < 1:
            raise ValueError(f"reuse={reuse}; expected at least 1 (the draws of each streamed frame)")
        if stream_workers < 1:
            raise ValueError(f"stream_workers={stream_workers}; expected at least 1 rollout process")
        if stall_s <= 0:
            raise ValueError(f"stall_s={stall_s}; expected a positive number of seconds")
        super().__init__(task_ids, episodes, robot=robot, seed=seed, workers=workers, progress=progress,
                         images=images)
        self.task_ids, self.robot = list(task_ids), robot
        self.capacity, self.reuse, self.stream_workers, self.stall_s = capacity, reuse, stream_workers, stall_s
        self.source = (f"sim:{','.join(task_ids)} streamed from seed {seed} ({episodes} per task to start; "
                       f"{capacity} frames buffered, each drawn {reuse} times)")
        self.buffer: StreamBuffer | None = None

    def cache(self, chunk_size: int, image_size: int | None, state_keys=(), aux_keys=()) -> StreamBuffer:
        """The one buffer of this stream (its workers start here), filled with the warm-up frames.
        `image_size=None`: vectors only, for learners that read no camera."""
        if image_size is not None and not self.images:
            raise ValueError(f"{self.source}: streamed without images (images=False); a learner that reads "
                             "cameras needs SimStream(..., images=True)")
        key = (chunk_size, image_size, tuple(state_keys), tuple(aux_keys))
        if self.buffer is not None:
            if self.buffer.key != key:
                raise ValueError(f"this stream already feeds a buffer of {self.buffer.key}; asked for {key}")
            return self.buffer
        self._check_keys(state_keys, aux_keys)
        buffer = StreamBuffer(self, key)
        for e in self.episodes:
            arrays = dict(e)
            if image_size is not None:
                arrays["images"] = _images(arrays, self.cameras, image_size)
            if not buffer.insert(arrays, seed=-1):
                break  # the warm-up is bigger than the buffer: the rest gave statistics only
        for e in self.episodes:  # the buffer holds their frames now: the camera frames need not stay twice
            for k in [k for k in e if k.startswith(OBS_IMAGES_PREFIX)]:
                del e[k]
        buffer.start()
        self.buffer = buffer
        return buffer

    def close(self) -> None:
        if self.buffer is not None:
            self.buffer.close()


class StreamBuffer:
    """Training's view of a stream, shaped as `DemoCache` (images, state, chunk, pad_mask, texts, aux)
    for the frames it holds; `draw` picks a batch among the frames still to be drawn."""

    def __init__(self, stream: SimStream, key: tuple):
        chunk_size, image_size, state_keys, aux_keys = key
        self.stream, self.key, self.state_keys, self.aux_keys = stream, key, list(state_keys), list(aux_keys)
        n, K = stream.capacity, chunk_size
        if n < 2:
            raise ValueError(f"capacity={n} frames; expected a buffer of at least 2 frames")
        self.chunk_size, self.image_size, self.cameras = K, image_size, list(stream.cameras)
        dims = {k: stream.feature_dim(k) for k in (*state_keys, *aux_keys, ACTION)}
        self.images = (torch.zeros((n, len(self.cameras), 3, image_size, image_size), dtype=torch.uint8)
                       if image_size is not None else None)
        self.state = torch.zeros((n, sum(dims[k] for k in state_keys)))
        self.aux = torch.zeros((n, sum(dims[k] for k in aux_keys))) if aux_keys else None
        self.chunks = torch.zeros((n, K, dims[ACTION]))
        self.pads = torch.zeros((n, K), dtype=torch.bool)
        self.text_index = torch.zeros(n, dtype=torch.long)
        self.seed = torch.full((n,), -1, dtype=torch.long)  # the episode's seed (-1: a warm-up episode)
        self.episode = torch.full((n,), -1, dtype=torch.long)  # which episode, numbered in insertion order
        self.frame = torch.zeros(n, dtype=torch.long)  # the frame's index in its episode
        self.inserted = 0  # episodes inserted so far, the warm-up's included
        self.uses = torch.zeros(n, dtype=torch.long)
        self.live = torch.zeros(n, dtype=torch.bool)  # holds a frame still to be drawn
        self.texts: list[str] = []
        self._text_ids: dict[str, int] = {}
        self.report: dict[str, Any] = {  # live: train_info.json reads it at the end
            "seeds_from": stream.seed, "warmup_episodes": stream.num_episodes, "capacity_frames": n,
            "reuse": stream.reuse, "workers": stream.stream_workers, "episodes_streamed": 0, "frames_streamed": 0,
            "expert_failures": 0, "frames_drawn": 0, "wait_s": 0.0}
        self.seeds: list[tuple[str, int]] = []  # every streamed episode's (task, seed), in arrival order
        self._pending: tuple | None = None
        self._processes: list = []
        self._queue = self._stop = None
        self._last_arrival = time.monotonic()

    # -- DemoCache's shape ------------------------------------------------------------------------
    def __len__(self) -> int:
        return int(self.live.sum())

    def on(self, device: torch.device) -> StreamBuffer:
        return self  # rows change every step: each batch is copied to the device as it is drawn

    def chunk(self, index: torch.Tensor) -> torch.Tensor:
        """(B, K, D) absolute action chunks of the given slots."""
        return self.chunks[index]

    def pad_mask(self, index: torch.Tensor) -> torch.Tensor:
        """(B, K) bool: True at the chunk steps past the episode's last frame (the last action repeated)."""
        return self.pads[index]

    def aux_stats(self) -> tuple[torch.Tensor, torch.Tensor]:
        """Mean and standard deviation of the grounding targets over the frames held (the warm-up's)."""
        aux = self.aux[self.live]
        return aux.mean(0), aux.std(0)

    def relative_quantiles(self, low_q: float = 0.01, high_q: float = 0.99) -> tuple[np.ndarray, np.ndarray]:
        """Per-dimension quantiles of (chunk action - current state) over the frames held (the warm-up's)."""
        return relative_quantiles(self.chunks[self.live], self.state[self.live], low_q, high_q)

    # -- the stream -------------------------------------------------------------------------------
    def insert(self, arrays: dict[str, np.ndarray], seed: int) -> bool:
        """Write one episode into free slots; False (nothing written) when they are too few."""
        T = len(arrays[ACTION])
        free = (~self.live).nonzero()[:, 0]
        if len(free) < T:
            return False
        slots = free[:T]
        actions = torch.from_numpy(np.asarray(arrays[ACTION], dtype=np.float32))
        index = torch.from_numpy(chunk_indices(np.zeros(T, dtype=np.int64), self.chunk_size))
        self.chunks[slots] = actions[index]
        self.pads[slots] = index != torch.arange(T)[:, None] + torch.arange(self.chunk_size)
        self.state[slots] = self._vectors(arrays, self.state_keys, T)
        if self.aux is not None:
            self.aux[slots] = self._vectors(arrays, self.aux_keys, T)
        if self.images is not None:
            self.images[slots] = torch.from_numpy(arrays["images"])
        self.text_index[slots] = torch.tensor([self._text_ids.setdefault(str(t), len(self._text_ids))
                                               for t in arrays[TASK]])
        self.texts = list(self._text_ids)
        self.seed[slots], self.episode[slots], self.frame[slots] = seed, self.inserted, torch.arange(T)
        self.uses[slots], self.live[slots] = 0, True
        self.inserted += 1
        return True

    @staticmethod
    def _vectors(arrays: dict[str, np.ndarray], keys: list[str], T: int) -> torch.Tensor:
        return torch.cat([torch.from_numpy(np.asarray(arrays[k], dtype=np.float32)).reshape(T, -1) for k in keys], 1)

    def start(self) -> None:
        """Start the workers, each on its own residue of the seeds after the warm-up's."""
        s = self.stream
        if self._processes:
            return
        ctx = mp.get_context("spawn")  # fresh interpreters: no forked torch threads or GL contexts
        self._queue = ctx.Queue(maxsize=QUEUED_PER_WORKER * s.stream_workers)
        self._stop = ctx.Event()
        first = max(s.next_seed.values())
        for w in range(s.stream_workers):
            p = ctx.Process(target=_worker, daemon=True, name=f"vla-stream-{w}", args=(
                self._queue, self._stop, s.task_ids, s.robot, {t: first + w for t in s.task_ids},
                s.stream_workers, self.image_size, self.cameras))
            p.start()
            self._processes.append(p)
        self._last_arrival = time.monotonic()

    def close(self) -> None:
        """Stop the workers (they finish the episode at hand, or are terminated after a few seconds)."""
        if self._stop is None:
            return
        self._stop.set()
        deadline = time.monotonic() + 10
        while any(p.is_alive() for p in self._processes) and time.monotonic() < deadline:
            try:  # a worker blocked on a full queue needs room to see the stop
                self._queue.get(timeout=0.1)
            except queues.Empty:
                pass
        for p in self._processes:
            if p.is_alive():
                p.terminate()
            p.join(timeout=5)
        self._processes, self._stop = [], None

    def _receive(self, timeout: float) -> bool:
        """Take one message from the workers (waiting up to `timeout`); False when none came."""
        try:
            message = self._queue.get(timeout=timeout) if timeout > 0 else self._queue.get_nowait()
        except queues.Empty:
            return False
        kind = message[0]
        if kind == "error":
            raise StreamError(f"a rollout worker failed; its traceback:\n{message[1]}")
        self._last_arrival = time.monotonic()
        if kind == "failed":
            self.report["expert_failures"] += 1
            return True
        _, task_id, seed, arrays = message
        self._pending = (task_id, seed, arrays)
        return True

    def _fill(self) -> None:
        """Insert every episode that has arrived and fits."""
        while True:
            if self._pending is None and not self._receive(0):
                return
            if self._pending is None:
                continue  # a failure was counted
            task_id, seed, arrays = self._pending
            if not self.insert(arrays, seed):
                return  # no room yet: it waits for frames to be drawn out
            self._pending = None
            self.seeds.append((task_id, seed))
            self.report["episodes_streamed"] += 1
            self.report["frames_streamed"] += len(arrays[ACTION])

    def _wait(self) -> None:
        """Block until an episode arrives; a dead worker or a silence of `stall_s` is a StreamError."""
        started = time.monotonic()
        while not self._receive(1.0):
            dead = [p for p in self._processes if not p.is_alive()]
            if dead:
                raise StreamError(f"rollout worker {dead[0].name} exited with code {dead[0].exitcode} after "
                                  f"{self.report['episodes_streamed']} streamed episodes; training stops here "
                                  "(the checkpoints written so far are kept)")
            if time.monotonic() - self._last_arrival > self.stream.stall_s:
                raise StreamError(f"no streamed episode for {self.stream.stall_s:g} s "
                                  f"({len(self._processes)} workers alive); training stops here "
                                  "(the checkpoints written so far are kept)")
        self.report["wait_s"] += time.monotonic() - started

    def draw(self, batch_size: int, generator: torch.Generator) -> torch.Tensor:
        """`batch_size` distinct slots among the frames still to be drawn; each drawn frame counts one use
        and leaves the buffer at `reuse`. Waits for the workers while fewer than half the slots are live."""
        if not self._processes:
            raise StreamError("the stream's workers are not running (closed, or never started)")
        if batch_size > self.stream.capacity // 2:  # training waits below half the buffer: a batch must fit there
            raise ValueError(f"batch of {batch_size} frames from a stream buffer of {self.stream.capacity}; expected "
                             f"a buffer of at least {2 * batch_size} frames (--stream-buffer)")
        need = self.stream.capacity // 2
        self._fill()
        while int(self.live.sum()) < need:
            if self._pending is None:
                self._wait()
            self._fill()
        live = self.live.nonzero()[:, 0]
        index = live[torch.randperm(len(live), generator=generator)[:batch_size]]
        self.uses[index] += 1
        self.live[index] = self.uses[index] < self.stream.reuse
        self.report["frames_drawn"] += batch_size
        return index
