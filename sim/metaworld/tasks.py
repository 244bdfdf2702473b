"""Meta-World's v3 tasks as this project names them: ids, instructions, difficulty groups, sets.

Task ids are `metaworld/<env name>` (e.g. `metaworld/push-v3`). The instruction of each task, its
difficulty group (easy, medium, hard, very_hard: the split of Seo et al., 2022, which published
VLA results on Meta-World report by) and its scripted policy's class come from the data file that
LeRobot's own Meta-World environment reads (`lerobot/envs/metaworld_config.json`), so that a
dataset recorded here carries the same task strings as LeRobot's Meta-World datasets and
evaluations. The MT10 and MT50 sets come from Meta-World itself. Nothing here imports torch.
"""

from __future__ import annotations

import importlib.util
import json
from dataclasses import dataclass
from functools import cache
from pathlib import Path

import metaworld.env_dict

PREFIX = "metaworld/"
MAX_STEPS = 500  # Meta-World's max_path_length: every published protocol runs 500-step episodes
DIFFICULTIES = ("easy", "medium", "hard", "very_hard")


@dataclass(frozen=True)
class MetaWorldTask:
    id: str  # metaworld/push-v3
    name: str  # push-v3: Meta-World's env name
    group: str  # metaworld/easy | metaworld/medium | metaworld/hard | metaworld/very_hard
    instruction: str
    policy_class: str  # the scripted policy in metaworld.policies
    sets: tuple[str, ...]  # ("mt10", "mt50") or ("mt50",)
    max_steps: int = MAX_STEPS

    @property
    def env_id(self) -> str:
        return f"vla_sim/metaworld-{self.name}"


@cache
def lerobot_metaworld_config() -> dict:
    """LeRobot's Meta-World task data, read as a file: importing `lerobot.envs` would import torch."""
    spec = importlib.util.find_spec("lerobot")
    if spec is None or not spec.submodule_search_locations:
        raise ImportError("Meta-World tasks need LeRobot's task data: pip install -e '.[metaworld]'")
    path = Path(next(iter(spec.submodule_search_locations))) / "envs" / "metaworld_config.json"
    if not path.is_file():
        raise ImportError(f"LeRobot's Meta-World task data is missing at {path}; expected lerobot==0.6.1")
    return json.loads(path.read_text())


def _tasks() -> dict[str, MetaWorldTask]:
    data = lerobot_metaworld_config()
    difficulty = {name: group for group, names in data["DIFFICULTY_TO_TASKS"].items() for name in names}
    mt10 = set(metaworld.env_dict.MT10_V3)
    tasks = {}
    for name in metaworld.env_dict.MT50_V3:
        tasks[PREFIX + name] = MetaWorldTask(
            id=PREFIX + name, name=name, group=PREFIX + difficulty[name],
            instruction=data["TASK_DESCRIPTIONS"][name], policy_class=data["TASK_POLICY_MAPPING"][name],
            sets=("mt10", "mt50") if name in mt10 else ("mt50",))
    return tasks


TASKS: dict[str, MetaWorldTask] = _tasks()
GROUPS: dict[str, list[str]] = {
    **{PREFIX + d: [t.id for t in TASKS.values() if t.group == PREFIX + d] for d in DIFFICULTIES},
    PREFIX + "mt10": [PREFIX + name for name in metaworld.env_dict.MT10_V3],
    PREFIX + "mt50": list(TASKS),
}
