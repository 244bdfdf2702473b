"""Planner training examples from a LeRobot dataset recorded with subtasks and scene descriptions.

Per episode the dataset gives, per frame, `subtask_index`, `subtask` and `scene_description`.
The state at the first frame of each subtask is that subtask's start state; the frames kept
after success (`vla record --settle-frames`) give the final state, which is the plan's goal.
From these come four kinds of examples:

- describe: a frame's images -> its scene description (perception; many frames per episode);
- plan: the images at the start of subtask i and the episode's instruction -> the plan from i
  on (so the planner can also re-plan from the middle of a task);
- world: (state before subtask i, subtask i) -> the change it made;
- critic: each episode's sequence of states toward its goal, for the ranking loss.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import torch
from tqdm import tqdm

from vla.data.dataset import DatasetError, DemoDataset
from vla.data.record import SCENE_DESCRIPTION, SUBTASK, SUBTASK_INDEX
from vla.model.inputs import frames_to_cache
from vla.planner.plan import Plan, PlanStep, state_change
from vla.types import OBS_IMAGES_PREFIX


@dataclass
class EpisodePlan:
    instruction: str
    starts: list[int]  # dataset frame index where each subtask starts
    final: int  # a frame showing the final state
    states: list[str]  # state at each start, then the final state (len = subtasks + 1)
    subtasks: list[str]

    def plan_from(self, i: int) -> Plan:
        steps = tuple(PlanStep(s, state_change(a, b)) for s, a, b in
                      zip(self.subtasks[i:], self.states[i:-1], self.states[i + 1:], strict=True))
        return Plan(self.states[-1], steps)


def episode_plans(ds: DemoDataset) -> list[EpisodePlan]:
    """One EpisodePlan per episode; a clear error when the dataset cannot teach a planner."""
    missing = [k for k in (SUBTASK_INDEX, SUBTASK, SCENE_DESCRIPTION) if k not in ds.features]
    if missing:
        raise DatasetError(f"the planner needs per-frame {missing}; record the dataset with `vla record` "
                           "(multi-step tasks, --settle-frames 3)")
    hf = ds.lerobot.hf_dataset.with_format(None)
    episode = np.asarray(hf["episode_index"]).reshape(-1)
    index = np.asarray(hf[SUBTASK_INDEX]).reshape(-1)
    subtask, scene = hf[SUBTASK], hf[SCENE_DESCRIPTION]
    tasks = ds.tasks
    task_index = np.asarray(hf["task_index"]).reshape(-1)
    out = []
    bounds = np.flatnonzero(np.diff(episode)) + 1
    for start, stop in zip(np.r_[0, bounds], np.r_[bounds, len(episode)], strict=True):
        idx = index[start:stop]
        present = list(dict.fromkeys(idx.tolist()))
        firsts = [start + int(np.argmax(idx == i)) for i in present]
        texts = [subtask[f] for f in firsts]
        # Settle frames carry one index past the last subtask and repeat its text.
        if len(present) < 2 or texts[-1] != texts[-2]:
            raise DatasetError(
                f"episode {int(episode[start])} has no frames after its last subtask was done, so its final "
                "state (the planner's goal) is unknown; record with `vla record --settle-frames 3`"
            )
        out.append(EpisodePlan(tasks[int(task_index[start])], firsts[:-1], stop - 1,
                               [scene[f] for f in firsts[:-1]] + [scene[stop - 1]], texts[:-1]))
    return out


@dataclass
class PlannerData:
    images: torch.Tensor  # (M, C, 3, H, W) uint8 of the frames below
    frame_rows: dict[int, int]  # dataset frame index -> row in images
    descriptions: list[tuple[int, str]]  # (row, scene description)
    plans: list[tuple[int, str, str]]  # (row, instruction, plan text)
    world: list[tuple[str, str, str]]  # (state, subtask, change)
    episodes: list[EpisodePlan]
    cameras: list[str]


def build_planner_data(ds: DemoDataset, image_size: int, cameras: list[str] | None = None, every: int = 3,
                       jitter: int = 3, progress: bool = True) -> PlannerData:
    """Decode the frames the examples need (every `every`-th frame, and `jitter` frames after each
    subtask start) into memory, resized to the vision tower's `image_size`, cameras stacked in
    `cameras` order (the model's; the dataset's by default)."""
    cameras = list(cameras or ds.cameras)
    if sorted(cameras) != sorted(ds.cameras):
        raise DatasetError(f"the model takes cameras {cameras}; the dataset has {list(ds.cameras)}")
    episodes = episode_plans(ds)
    hf = ds.lerobot.hf_dataset.with_format(None)
    scene = hf[SCENE_DESCRIPTION]
    episode = np.asarray(hf["episode_index"]).reshape(-1)
    frames = set(range(0, len(scene), every))
    plan_frames = []
    for ep in episodes:
        frames.add(ep.final)
        for i, s in enumerate(ep.starts):
            for j in range(jitter + 1):
                if s + j < len(episode) and episode[s + j] == episode[s]:
                    frames.add(s + j)
                    plan_frames.append((s + j, ep, i))
    order = sorted(frames)
    rows = {f: r for r, f in enumerate(order)}
    images = None
    loader = torch.utils.data.DataLoader(torch.utils.data.Subset(ds.lerobot, order), batch_size=64, num_workers=2)
    r = 0
    for batch in tqdm(loader, desc="decode frames", unit="batch", disable=not progress):
        x = torch.stack([frames_to_cache(batch[OBS_IMAGES_PREFIX + c], image_size) for c in cameras], dim=1)
        if images is None:
            images = torch.empty((len(order), *x.shape[1:]), dtype=torch.uint8)
        images[r : r + len(x)] = x
        r += len(x)
    world = [(a, s, state_change(a, b)) for ep in episodes
             for s, a, b in zip(ep.subtasks, ep.states[:-1], ep.states[1:], strict=True)]
    return PlannerData(
        images, rows, [(rows[f], scene[f]) for f in order],
        [(rows[f], ep.instruction, ep.plan_from(i).text()) for f, ep, i in plan_frames],
        world, episodes, cameras,
    )
