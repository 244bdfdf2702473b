"""Record scripted-expert demonstrations from the simulator into a LeRobot v3.0 dataset.

Written with LeRobot's own `LeRobotDataset` API. Only successful episodes are kept, until each
task has the number asked for. Per frame, besides images, state, action and task, the dataset
holds what the planner learns from: `subtask_index` (int64), `subtask` and
`scene_description` (LeRobot string features, read back as str). A sidecar file
`meta/vla_recording.json` records the seeds used, so `--resume` continues where an interrupted
recording stopped; an interrupt (Ctrl-C or SIGTERM) finalizes the episodes saved so far.
"""

from __future__ import annotations

import contextlib
import json
import os
import shutil
import signal
import time
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
from tqdm import tqdm

from sim import make_env, scripted_expert
from vla.data.dataset import DEFAULT_VIDEO_BACKEND, DatasetError, check_local_dataset, quiet_datasets
from vla.types import ACTION, NAMED_OBJECTS_NAMES, OBS_ENV_STATE, OBS_NAMED, OBS_STATE, TASK

SIDECAR = Path("meta") / "vla_recording.json"
SUBTASK_INDEX, SUBTASK, SCENE_DESCRIPTION = "subtask_index", "subtask", "scene_description"
# Training demonstrations start at this seed so that evaluation seeds 0..999 stay unseen.
DEFAULT_RECORD_SEED = 1000


def features_for(env, use_videos: bool) -> dict[str, dict]:
    """LeRobot feature spec from an env's observation space and its robot's state and action names.
    The planner's features (subtask, scene description) only where the env has them (the tabletop)."""
    robot = env.unwrapped.robot
    features: dict[str, dict] = {}
    for key, space in env.observation_space.spaces.items():
        if key.startswith("observation.images."):
            features[key] = {"dtype": "video" if use_videos else "image", "shape": space.shape,
                             "names": ["height", "width", "channels"]}
    features[OBS_STATE] = {"dtype": "float32", "shape": (robot.state_dim,), "names": list(robot.state_names)}
    if OBS_ENV_STATE in env.observation_space.spaces:  # privileged: diagnostics and training-only targets
        names_env = list(env.unwrapped.environment_state_names)
        features[OBS_ENV_STATE] = {"dtype": "float32", "shape": (len(names_env),), "names": names_env}
    if OBS_NAMED in env.observation_space.spaces:  # privileged: the instruction's objects, a grounding target
        features[OBS_NAMED] = {"dtype": "float32", "shape": (len(NAMED_OBJECTS_NAMES),), "names": NAMED_OBJECTS_NAMES}
    features[ACTION] = {"dtype": "float32", "shape": (robot.action_dim,), "names": list(robot.action_names)}
    if env.unwrapped.planner_features:
        features[SUBTASK_INDEX] = {"dtype": "int64", "shape": (1,), "names": None}
        features[SUBTASK] = {"dtype": "string", "shape": (1,), "names": None}
        features[SCENE_DESCRIPTION] = {"dtype": "string", "shape": (1,), "names": None}
    return features


@dataclass
class TaskProgress:
    kept: int = 0
    failed: int = 0
    next_seed: int = 0
    seeds: list[int] = field(default_factory=list)


@dataclass
class Recording:
    """What `meta/vla_recording.json` holds: the recording's settings and per-task progress."""

    robot: str
    image_size: int | None
    storage: str
    seed: int
    tasks: dict[str, TaskProgress]
    settle_frames: int = 0
    detours: float = 0.0

    def save(self, root: Path) -> None:
        path = root / SIDECAR
        tmp = path.with_suffix(".tmp")
        tmp.write_text(json.dumps(asdict(self), indent=1))
        tmp.replace(path)  # atomic: an interrupt never leaves half a file

    @classmethod
    def load(cls, root: Path) -> Recording:
        path = root / SIDECAR
        if not path.is_file():
            raise DatasetError(f"cannot resume {root}: {path} is missing (was it recorded with `vla record`?)")
        data = json.loads(path.read_text())
        data["tasks"] = {k: TaskProgress(**v) for k, v in data["tasks"].items()}
        return cls(**data)


class _DeferInterrupts:
    """Turn SIGINT/SIGTERM into KeyboardInterrupt, but never inside a critical section."""

    def __init__(self):
        self.pending = False
        self.critical = False

    def _handler(self, signum, frame):
        if self.critical:
            self.pending = True
        else:
            raise KeyboardInterrupt

    @contextlib.contextmanager
    def installed(self):
        old = {s: signal.signal(s, self._handler) for s in (signal.SIGINT, signal.SIGTERM)}
        try:
            yield self
        finally:
            for s, h in old.items():
                signal.signal(s, h)

    @contextlib.contextmanager
    def section(self):
        self.critical = True
        try:
            yield
        finally:
            self.critical = False
        if self.pending:
            self.pending = False  # delivered: a caller that catches it and goes on starts clean
            raise KeyboardInterrupt


def _prepare_root(root: Path, resume: bool, overwrite: bool) -> None:
    if resume:
        check_local_dataset(root)
        return
    if root.exists() and any(root.iterdir()):
        if not overwrite:
            raise DatasetError(f"{root} exists; pass --overwrite to replace it or --resume to continue it")
        if not (root / "meta" / "info.json").is_file():
            raise DatasetError(f"refusing to overwrite {root}: it is not empty and not a LeRobot dataset")
        shutil.rmtree(root)
    elif root.exists():
        root.rmdir()  # LeRobot creates the directory itself


class EpisodeDropped(RuntimeError):
    """An episode that cannot become a demonstration, with the reason (counted by the caller, never kept)."""


def check_detours(expert, detours: float, detour=None) -> None:
    """Refuse, before any episode, a share of recovery demonstrations that is not one, or an expert
    that cannot drive the arm off course (when no `detour` driver, such as a policy, is given)."""
    if not 0 <= detours <= 1:
        raise ValueError(f"detours={detours!r}; expected the share of recovery demonstrations, in [0, 1]")
    if detours > 0 and detour is None and not hasattr(expert, "detour"):
        raise ValueError(f"detours={detours:g}: the {type(expert).__name__} expert has no recovery detours "
                         "(the tabletop expert has)")


def expert_episode(env, expert, seed: int, settle_frames: int = 0, detours: float = 0.0, detour=None
                   ) -> tuple[list[dict[str, Any]], bool]:
    """Roll out the expert once; the frames pair each observation with the action taken from it.

    `settle_frames` more frames are kept after success, the expert holding still: their
    `subtask_index` is one past the last subtask and their scene description is the final
    state, which the planner needs as its goal. `detours`: the share of episodes that are
    recovery demonstrations (chosen by the seed): before the first frame the arm is driven off
    course, unrecorded, and the frames show the expert's way back to the task from where it is.
    The driver is `detour(env, obs, rng) -> (obs, info)` (a policy's takeover round: `vla.evaluate.takeover`),
    else the expert's own `detour`. Raises `EpisodeDropped` when the detour leaves nothing to show: the
    task already solved, or a scene the expert cannot act from (its `cannot_act`)."""
    obs, info = env.reset(seed=seed)
    expert.reset()
    if detours > 0:
        rng = np.random.default_rng([seed, 0xDE70])  # not the env's stream: the scene stays the seed's
        if rng.random() < detours:
            obs, info = detour(env, obs, rng) if detour else expert.detour(obs, rng)
            if info["success"]:
                raise EpisodeDropped("the task was solved during the detour")
            if hasattr(expert, "cannot_act") and (reason := expert.cannot_act()):
                raise EpisodeDropped(reason)
            expert.reset()  # the expert plans from the measured state, not from its own last command
    planner = env.unwrapped.planner_features
    frames = []
    settle: int | None = None  # frames still to keep once the task succeeded
    while True:
        action = expert.predict_chunk(obs)[0]
        frame = {k: v for k, v in obs.items() if k != TASK}
        frame.update({ACTION: action.astype(np.float32), TASK: obs[TASK]})
        if planner:
            frame.update({
                SUBTASK_INDEX: np.array([info["subtask_index"]], dtype=np.int64),
                SUBTASK: info["subtask"],
                SCENE_DESCRIPTION: info["scene_description"],
            })
        frames.append(frame)
        if settle is not None:
            settle -= 1
            if settle == 0:
                return frames, True
        obs, _, terminated, truncated, info = env.step(action)
        if settle is None and (terminated or truncated):
            if not info["success"] or settle_frames == 0:
                return frames, bool(info["success"])
            settle = settle_frames


def record(
    task_ids: list[str],
    episodes: int,
    out: str | Path,
    seed: int = DEFAULT_RECORD_SEED,
    repo_id: str | None = None,
    storage: str = "video",
    robot: str | None = None,
    image_size: int | None = None,
    resume: bool = False,
    overwrite: bool = False,
    progress: bool = True,
    max_attempts_factor: int = 3,
    settle_frames: int = 0,
    detours: float = 0.0,
) -> dict[str, Any]:
    """Record `episodes` successful expert episodes of each task into a LeRobot dataset at `out`.
    `robot`: a robot config name or path (None: the tasks' suite's robot); every task must share it.
    `detours`: the share of recovery demonstrations (`expert_episode`)."""
    os.environ.setdefault("SVT_LOG", "1")  # the AV1 encoder prints its configuration otherwise
    # deferred: lerobot is heavy, and SVT_LOG must be set before it loads the encoder
    from lerobot.datasets.lerobot_dataset import LeRobotDataset

    quiet_datasets()
    if storage not in ("video", "images"):
        raise ValueError(f"storage={storage!r}; expected 'video' or 'images'")
    if episodes < 1:
        raise ValueError(f"episodes={episodes}; expected at least 1")
    root = Path(out)
    repo_id = repo_id or f"local/{root.name}"
    envs = {t: make_env(t, robot=robot, image_size=image_size) for t in task_ids}
    first = next(iter(envs.values())).unwrapped
    robots = {t: e.unwrapped.robot.name for t, e in envs.items()}
    try:  # before anything on disk is touched
        if len(set(robots.values())) > 1:
            raise ValueError(f"one dataset holds one robot's episodes; these tasks run different robots: {robots}")
        check_detours(scripted_expert(envs[task_ids[0]]), detours)
        _prepare_root(root, resume, overwrite)
    except ValueError:  # DatasetError is one
        for env in envs.values():
            env.close()
        raise
    robot = first.robot.name
    if resume:
        rec = Recording.load(root)
        if (rec.robot, rec.image_size, rec.storage, rec.settle_frames, rec.detours) != (
                robot, image_size, storage, settle_frames, detours):
            raise DatasetError(
                f"cannot resume {root}: it was recorded with robot={rec.robot}, image_size={rec.image_size}, "
                f"storage={rec.storage}, settle_frames={rec.settle_frames}, detours={rec.detours}; got "
                f"robot={robot}, image_size={image_size}, storage={storage}, settle_frames={settle_frames}, "
                f"detours={detours}"
            )
        ds = LeRobotDataset.resume(repo_id, root=root, video_backend=DEFAULT_VIDEO_BACKEND)
    else:
        rec = Recording(robot, image_size, storage, seed, {}, settle_frames, detours)
        ds = LeRobotDataset.create(
            repo_id, fps=int(first.robot.control_rate_hz), features=features_for(envs[task_ids[0]], storage == "video"),
            root=root, robot_type=first.robot.name, use_videos=storage == "video",
            video_backend=DEFAULT_VIDEO_BACKEND, metadata_buffer_size=1,
        )
        rec.save(root)
    for t in task_ids:
        rec.tasks.setdefault(t, TaskProgress(next_seed=rec.seed))
    todo = sum(max(0, episodes - rec.tasks[t].kept) for t in task_ids)
    bar = tqdm(total=todo, desc="record", unit="ep", disable=not progress)
    guard = _DeferInterrupts()
    frames_written, start, interrupted = 0, time.perf_counter(), False
    try:
        with guard.installed():
            for task_id, env in envs.items():
                state, expert = rec.tasks[task_id], scripted_expert(env)
                attempts = 0
                while state.kept < episodes:
                    if attempts >= max_attempts_factor * episodes + 10:
                        raise RuntimeError(f"task {task_id!r}: the expert succeeded {state.kept} times in "
                                           f"{attempts} attempts; expected {episodes}")
                    attempts += 1
                    ep_seed = state.next_seed
                    try:
                        frames, success = expert_episode(env, expert, ep_seed, settle_frames, detours)
                    except EpisodeDropped:  # counted as a failure: the seed is used, nothing is kept
                        frames, success = [], False
                    with guard.section():  # an episode is saved whole or not at all
                        state.next_seed += 1
                        if success:
                            for frame in frames:
                                ds.add_frame(frame)
                            ds.save_episode()
                            state.kept += 1
                            state.seeds.append(ep_seed)
                            frames_written += len(frames)
                            bar.update()
                        else:
                            state.failed += 1
                        rec.save(root)
                    bar.set_postfix(task=task_id)
    except KeyboardInterrupt:
        interrupted = True
        if ds.has_pending_frames():
            ds.clear_episode_buffer()
    finally:
        bar.close()
        ds.finalize()
        rec.save(root)
        for env in envs.values():
            env.close()
    elapsed = time.perf_counter() - start
    summary = {
        "root": str(root),
        "repo_id": repo_id,
        "storage": storage,
        "interrupted": interrupted,
        "episodes": ds.meta.total_episodes,
        "frames": ds.meta.total_frames,
        "frames_written_now": frames_written,
        "seconds": round(elapsed, 2),
        "frames_per_second": round(frames_written / elapsed, 1) if elapsed > 0 else 0.0,
        "tasks": {t: asdict(p) for t, p in rec.tasks.items()},
    }
    if interrupted:
        raise RecordingInterrupted(summary)
    return summary


class RecordingInterrupted(KeyboardInterrupt):
    """Raised after an interrupted recording was finalized; carries the summary."""

    def __init__(self, summary: dict[str, Any]):
        super().__init__(f"interrupted; {summary['episodes']} episodes saved in {summary['root']}")
        self.summary = summary
