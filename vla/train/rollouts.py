"""Expert demonstrations rolled out in the simulator straight into training memory.

Demonstrations live in LeRobot datasets (`vla record`). A machine that cannot take a dataset
along (a GPU machine reached through a small transfer, without LeRobot or a video decoder) can
make the same demonstrations itself: the same scripted expert, the same seeds (from 1000 up,
successes only, the first N of each task) and the same frames as `vla record` writes, held in
memory and never encoded. `vla train --sim-tasks single --sim-episodes 200` trains on them.

Episodes are rolled out by a pool of processes (each with its own MuJoCo renderer); `SimDemos`
answers what training asks of a dataset (features, cameras, statistics, tasks).
"""

from __future__ import annotations

import math
import multiprocessing as mp
import os
import time
from collections import Counter
from typing import Any

import numpy as np
import torch
from tqdm import tqdm

from sim import make_env, scripted_expert
from vla.data.dataset import DatasetError
from vla.data.record import DEFAULT_RECORD_SEED, EpisodeDropped, check_detours, expert_episode, features_for
from vla.model.inputs import frames_to_cache
from vla.train.data import DemoCache, chunk_indices
from vla.types import ACTION, OBS_IMAGES_PREFIX, OBS_STATE, PRIVILEGED, TASK

VECTORS = (OBS_STATE, *PRIVILEGED, ACTION)  # the vectors an episode keeps beside its images

_ENVS: dict[str, Any] = {}  # per worker process: one env (and expert) per task


def _rollout(job: tuple) -> tuple[str, int, dict[str, np.ndarray] | str | None]:
    """One expert episode in a worker: its frames as stacked arrays (without the images unless asked for),
    None when the expert failed, or the reason it was dropped (`EpisodeDropped`). The job is
    (task, seed, robot, detours, images[, detour driver])."""
    task_id, seed, robot, detours, images, *driver = job
    if task_id not in _ENVS:
        env = make_env(task_id, robot=robot)
        _ENVS[task_id] = (env, scripted_expert(env))
    env, expert = _ENVS[task_id]
    try:
        frames, success = expert_episode(env, expert, seed, detours=detours, detour=driver[0] if driver else None)
    except EpisodeDropped as dropped:
        return task_id, seed, str(dropped)
    if not success:
        return task_id, seed, None
    keys = [k for k in frames[0] if (images and k.startswith(OBS_IMAGES_PREFIX)) or k in VECTORS]
    arrays = {k: np.stack([f[k] for f in frames]) for k in keys}
    arrays[TASK] = np.array([f[TASK] for f in frames])
    return task_id, seed, arrays


def episode_images(arrays: dict[str, np.ndarray], cameras: list[str], size: int) -> torch.Tensor:
    """(T, C, 3, size, size) uint8 cache frames from one episode's (T, H, W, 3) camera frames."""
    return torch.stack([frames_to_cache(torch.from_numpy(arrays[OBS_IMAGES_PREFIX + c]).permute(0, 3, 1, 2), size)
                        for c in cameras], 1)


def _stats(values: np.ndarray) -> dict[str, np.ndarray]:
    """The statistics LeRobot keeps for a 1-D feature (those training reads)."""
    q = np.quantile(values, [0.01, 0.99], axis=0)
    return {"mean": values.mean(0), "std": values.std(0), "min": values.min(0), "max": values.max(0),
            "q01": q[0], "q99": q[1]}


class SimDemos:
    """Successful expert episodes of sim tasks, in memory, shaped as training reads a dataset."""

    def __init__(self, task_ids: list[str], episodes: int, robot: str | None = None, seed: int | None = None,
                 workers: int | None = None, progress: bool = True, detours: float = 0.0, images: bool = True,
                 detour=None):
        """`images=False` keeps the vectors only (state, privileged positions, actions, words): for learners
        that read no camera (the oracle MLP), so that many thousand episodes fit in memory. `detour`: what
        drives the arm off course in the `detours` share (`vla.evaluate.takeover.PolicyDetour`: a DAgger
        round; None: the expert's own detour); `dropped` counts the episodes it left nothing to show, by reason."""
        if episodes < 1:
            raise ValueError(f"episodes={episodes}; expected at least 1 per task")
        self.seed = DEFAULT_RECORD_SEED if seed is None else seed
        self.detours = detours
        self.detour = detour
        self.images = images
        self.dropped: Counter[str] = Counter()
        probe = make_env(task_ids[0], robot=robot)
        check_detours(scripted_expert(probe), detours, detour)
        self.features = features_for(probe, use_videos=False)
        robot_cfg = probe.unwrapped.robot
        probe.close()
        self.cameras = list(robot_cfg.camera_names)
        self.action_dim = robot_cfg.action_dim
        self.state_dim = robot_cfg.state_dim
        self.fps = int(robot_cfg.control_rate_hz)
        self.robot_type = robot_cfg.name
        driver = f" after {detour.path}'s ticks" if getattr(detour, "path", None) else ""
        self.source = f"sim:{','.join(task_ids)} x {episodes} (seeds from {self.seed}" + \
            (f", {detours:g} recovery demonstrations{driver})" if detours else ")")
        self.episodes = self._roll(task_ids, episodes, robot, workers or os.cpu_count() or 1, progress)
        frames = {k: np.concatenate([e[k] for e in self.episodes]) for k in VECTORS
                  if k in self.episodes[0]}
        self.stats = {k: _stats(v.astype(np.float64)) for k, v in frames.items()}
        self.tasks = sorted({str(t) for e in self.episodes for t in e[TASK]})
        self._caches: dict[tuple, DemoCache] = {}

    def _roll(self, task_ids: list[str], episodes: int, robot: str, workers: int,
              progress: bool) -> list[dict[str, np.ndarray]]:
        """The first `episodes` successes of each task from seed `self.seed` up, in (task, seed) order."""
        kept: dict[str, dict[int, dict]] = {t: {} for t in task_ids}
        tried = {t: self.seed for t in task_ids}  # next seed not yet tried
        bar = tqdm(total=episodes * len(task_ids), desc="roll out", unit="ep", disable=not progress)
        start = time.perf_counter()
        ctx = mp.get_context("spawn")  # fresh interpreters: no forked torch threads or GL contexts
        with ctx.Pool(workers) as pool:
            while any(len(kept[t]) < episodes for t in task_ids):
                jobs = []
                for t in task_ids:
                    missing = episodes - len(kept[t])
                    if missing > 0:  # a little over the missing count: experts fail a few percent
                        n = missing + math.ceil(0.05 * missing) + 1
                        jobs += [(t, s, robot, self.detours, self.images, self.detour)
                                 for s in range(tried[t], tried[t] + n)]
                        tried[t] += n
                        if tried[t] - self.seed > 3 * episodes + 10:
                            dropped = "".join(f"; dropped {n}: {why}" for why, n in self.dropped.most_common())
                            raise RuntimeError(f"task {t!r}: the expert succeeded {len(kept[t])} times in "
                                               f"{tried[t] - self.seed} attempts; expected {episodes}{dropped}")
                for task_id, seed, arrays in pool.imap_unordered(_rollout, jobs, chunksize=1):
                    if isinstance(arrays, str):
                        self.dropped[arrays] += 1
                    elif arrays is not None:
                        kept[task_id][seed] = arrays
                        bar.update(int(len(kept[task_id]) <= episodes))
        bar.close()
        if self.dropped and progress:
            tqdm.write("roll out: dropped " + "; ".join(f"{n}: {why}" for why, n in self.dropped.most_common()))
        self.roll_seconds = time.perf_counter() - start
        self.next_seed = tried  # per task: the first seed not tried (a stream goes on from there)
        return [kept[t][s] for t in task_ids for s in sorted(kept[t])[:episodes]]

    @property
    def num_episodes(self) -> int:
        return len(self.episodes)

    @property
    def num_frames(self) -> int:
        return sum(len(e[ACTION]) for e in self.episodes)

    def feature_dim(self, key: str) -> int:
        return int(np.prod(self.features[key]["shape"]))

    def cache(self, chunk_size: int, image_size: int, state_keys=(OBS_STATE,), aux_keys=()) -> DemoCache:
        """The training cache, as `DemoCache.from_dataset` builds it from a recorded dataset (built
        once per set of arguments: several runs from one process share it)."""
        if not self.images:
            raise ValueError(f"{self.source}: rolled out without images (images=False); a learner that reads "
                             "cameras needs SimDemos(..., images=True)")
        key = (chunk_size, image_size, tuple(state_keys), tuple(aux_keys))
        if key not in self._caches:
            self._caches[key] = self._build_cache(*key)
        return self._caches[key]

    def _images(self, image_size: int) -> torch.Tensor:
        """(N, C, 3, S, S) uint8, resized as the dataset path resizes."""
        return torch.cat([episode_images(e, self.cameras, image_size) for e in self.episodes])

    def _check_keys(self, state_keys, aux_keys) -> None:
        for what, keys in (("reads its state from", state_keys), ("is trained to predict", aux_keys)):
            missing = [k for k in keys if k not in self.features]
            if missing:
                raise DatasetError(f"the policy {what} {list(keys)}; the rollouts lack {missing} "
                                   f"(they have {sorted(self.features)})")

    def _build_cache(self, chunk_size: int, image_size: int, state_keys: tuple[str, ...],
                     aux_keys: tuple[str, ...]) -> DemoCache:
        self._check_keys(state_keys, aux_keys)

        def stacked(keys) -> torch.Tensor:
            return torch.cat([torch.from_numpy(np.concatenate([e[k] for e in self.episodes]).astype(np.float32))
                              .reshape(self.num_frames, -1) for k in keys], 1)

        # The images depend on the size only: every cache of one size shares one tensor.
        images = next((c.images for (_, size, _, _), c in self._caches.items() if size == image_size), None)
        images = self._images(image_size) if images is None else images
        texts: dict[str, int] = {}
        text_index = torch.tensor([texts.setdefault(str(t), len(texts)) for e in self.episodes for t in e[TASK]])
        episode = np.repeat(np.arange(len(self.episodes)), [len(e[ACTION]) for e in self.episodes])
        idx = chunk_indices(episode, chunk_size)
        return DemoCache(images, stacked(state_keys), stacked([ACTION]), torch.tensor(idx),
                         list(texts), text_index, list(self.cameras), stacked(aux_keys) if aux_keys else None)
