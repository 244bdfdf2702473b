"""`vla bench oracle-mlp`: what a dataset's demonstrations teach a learner that sees everything.

A plain MLP reads the privileged state (joints, every object's position:
`observation.environment_state`) and the instruction's words (which, and in what order), and
predicts the chunk of K joint targets relative to the state (L1 on standardized values, as the
continuous head). It trains in a minute or two on CPU and runs closed loop through the same
harness as every policy. Its success bounds what better perception or a bigger model could get
from these demonstrations at this much training: a lever on the data (the expert's choices,
hesitation, the number of episodes) shows here first, long before a VLA would have trained
enough to show it. A diagnostic, not a product policy: no robot has this state.

Takeover rounds (`--takeover-rounds R`, DAgger with the expert taking over: `vla.evaluate.takeover`)
measure what the learner's own mistakes teach it: each round the MLP just trained drives the first
ticks of new episodes, the expert shows the way from there, the episodes join the demonstrations,
and the MLP trains again from scratch for the same steps and is scored again.
"""

from __future__ import annotations

import re
import time
from pathlib import Path
from typing import Any

import numpy as np
import torch
from torch import nn

from sim import make_env
from vla.data import open_dataset
from vla.data.dataset import DatasetError
from vla.evaluate import evaluate
from vla.evaluate.takeover import TAKEOVER_SEED, PolicyDetour
from vla.train.data import chunk_indices
from vla.train.rollouts import SimDemos
from vla.train.stream import SimStream, StreamBuffer
from vla.types import ACTION, OBS_ENV_STATE, OBS_STATE, TASK


def words(text: str) -> list[str]:
    return re.findall(r"[a-z]+", text.lower())


class OracleData:
    """Per-frame inputs (state, object positions, instruction words) and relative chunk targets."""

    def __init__(self, dataset, chunk_size: int):
        """`dataset`: a LeRobot dataset recorded with `vla record`, or `SimDemos` rolled out in memory."""
        if isinstance(dataset, SimDemos):
            self.state, self.env, actions = (np.concatenate([e[k] for e in dataset.episodes]).astype(np.float32)
                                             for k in (OBS_STATE, OBS_ENV_STATE, ACTION))
            episode = np.concatenate([np.full(len(e[ACTION]), i) for i, e in enumerate(dataset.episodes)])
            texts = [str(t) for e in dataset.episodes for t in e[TASK]]
            episodes = dataset.num_episodes
        else:
            self.state, self.env, actions, episode, texts, episodes = self._read(dataset)
        self.vocabulary = {w: i for i, w in enumerate(sorted({w for t in set(texts) for w in words(t)}))}
        self.words = np.stack([self.bag(t) for t in texts])
        N = len(self.state)
        index = chunk_indices(episode, chunk_size)
        D = actions.shape[1]
        self.relative = actions[index] - self.state[:, None, :D]  # (N, K, D)
        self.episodes, self.frames, self.action_dim = episodes, N, D

    @staticmethod
    def _read(dataset: str | Path):
        ds = open_dataset(dataset)
        if OBS_ENV_STATE not in ds.features:
            raise DatasetError(f"{dataset} has no {OBS_ENV_STATE} (privileged object positions); "
                               "record it again with `vla record`")
        hf = ds.lerobot.hf_dataset.with_format(None)  # numbers only: no video is decoded
        tasks = ds.lerobot.meta.tasks
        text_of = {int(i): t for t, i in zip(tasks.index, tasks["task_index"], strict=True)}
        return (np.asarray(hf[OBS_STATE], dtype=np.float32), np.asarray(hf[OBS_ENV_STATE], dtype=np.float32),
                np.asarray(hf[ACTION], dtype=np.float32), np.asarray(hf["episode_index"]).reshape(-1),
                [text_of[int(i)] for i in np.asarray(hf["task_index"]).reshape(-1)], ds.num_episodes)

    def vocabulary_only(self) -> OracleData:
        """A copy that only turns instructions into inputs (`bag`): small to send to rollout processes."""
        light = OracleData.__new__(OracleData)
        light.vocabulary = self.vocabulary
        return light

    def bag(self, text: str) -> np.ndarray:
        """Which words the instruction has, and where each first appears (0..1): the order tells
        "the green cube on the blue cube" from "the blue cube on the green cube"."""
        present = np.zeros(len(self.vocabulary), dtype=np.float32)
        where = np.zeros(len(self.vocabulary), dtype=np.float32)
        seq = words(text)
        for i, w in enumerate(seq):
            if w in self.vocabulary and not present[self.vocabulary[w]]:
                present[self.vocabulary[w]] = 1.0
                where[self.vocabulary[w]] = (i + 1) / len(seq)
        return np.concatenate([present, where])

    def inputs(self) -> np.ndarray:
        return np.concatenate([self.state, self.env, self.words], axis=1)


class OracleMLP(nn.Module):
    def __init__(self, data: OracleData, chunk_size: int, width: int = 512, aux_dim: int = 0):
        """`aux_dim`: outputs beside the chunk, trained (`train_oracle`'s `aux`) but never read by the policy."""
        super().__init__()
        x, y = data.inputs(), data.relative.reshape(data.frames, -1)
        self.register_buffer("x_mean", torch.tensor(x.mean(0)))
        self.register_buffer("x_std", torch.tensor(x.std(0) + 1e-3))
        self.register_buffer("y_mean", torch.tensor(y.mean(0)))
        self.register_buffer("y_std", torch.tensor(y.std(0) + 1e-4))
        self.net = nn.Sequential(nn.Linear(x.shape[1], width), nn.GELU(), nn.Linear(width, width), nn.GELU(),
                                 nn.Linear(width, width), nn.GELU(), nn.Linear(width, y.shape[1] + aux_dim))
        self.chunk_size, self.action_dim = chunk_size, data.action_dim

    def outputs(self, x: torch.Tensor) -> torch.Tensor:
        """Standardized relative targets (B, K*D), then the auxiliary outputs, from raw inputs."""
        return self.net((x - self.x_mean) / self.x_std)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        """Standardized relative targets (B, K*D) from raw inputs."""
        return self.outputs(x)[:, : self.chunk_size * self.action_dim]


def train_oracle(data: OracleData, chunk_size: int, steps: int, batch_size: int, seed: int,
                 lr: float = 1e-3, aux: np.ndarray | None = None,
                 stream: StreamBuffer | None = None) -> tuple[OracleMLP, dict[str, Any]]:
    """`aux` (frames, A): an auxiliary target per frame, regressed beside the chunk (L1 on
    standardized values, its mean added to the chunk's) and never fed back; the policy reads the chunk only.
    `stream`: draw the batches from a stream's buffer (state keys: the state, then the object positions)
    instead of `data`, which then only sets the model's normalization and vocabulary."""
    if stream is not None and aux is not None:
        raise ValueError("train_oracle: an auxiliary target is per frame of `data`; a stream has none")
    torch.manual_seed(seed)
    model = OracleMLP(data, chunk_size, aux_dim=0 if aux is None else aux.shape[1])
    x = torch.tensor(data.inputs())
    y = (torch.tensor(data.relative.reshape(data.frames, -1)) - model.y_mean) / model.y_std
    n = y.shape[1]  # the chunk's outputs; the auxiliary ones follow
    if aux is not None:
        a = torch.tensor(aux, dtype=torch.float32)
        y = torch.cat([y, (a - a.mean(0)) / (a.std(0) + 1e-3)], 1)
    opt = torch.optim.AdamW(model.parameters(), lr=lr, weight_decay=1e-4)
    schedule = torch.optim.lr_scheduler.CosineAnnealingLR(opt, steps)
    generator = torch.Generator().manual_seed(seed)
    bags: dict[str, torch.Tensor] = {}

    def streamed() -> tuple[torch.Tensor, torch.Tensor]:
        i = stream.draw(batch_size, generator)
        state = stream.state[i]
        texts = [stream.texts[t] for t in stream.text_index[i].tolist()]
        words = torch.stack([bags.setdefault(t, torch.from_numpy(data.bag(t))) for t in texts])
        relative = stream.chunk(i)[..., :chunk_size, :] - state[:, None, : data.action_dim]
        return torch.cat([state, words], 1), (relative.reshape(batch_size, -1) - model.y_mean) / model.y_std

    start, losses = time.perf_counter(), []
    for _ in range(steps):
        if stream is None:
            i = torch.randint(0, data.frames, (batch_size,), generator=generator)
            xi, yi = x[i], y[i]
        else:
            xi, yi = streamed()
        error = (model.outputs(xi) - yi).abs()
        loss = error[:, :n].mean() + (error[:, n:].mean() if aux is not None else 0.0)
        opt.zero_grad(set_to_none=True)
        loss.backward()
        opt.step()
        schedule.step()
        losses.append(loss.item())
    model.eval()
    return model, {"train_s": round(time.perf_counter() - start, 1),
                   "final_loss": round(float(np.mean(losses[-100:])), 4)}


class OraclePolicy:
    """The Policy contract over the MLP: reads `observation.environment_state`, which only a sim has."""

    def __init__(self, model: OracleMLP, data: OracleData, env, n_action_steps: int):
        robot = env.unwrapped.robot
        self.model, self.data, self.n = model, data.vocabulary_only(), n_action_steps
        self.metadata = {"name": "oracle-mlp", "cameras": robot.camera_names, "state_dim": robot.state_dim,
                         "action_dim": robot.action_dim, "chunk_size": model.chunk_size,
                         "n_action_steps": n_action_steps, "fps": robot.control_rate_hz}

    def reset(self) -> None:
        pass

    def predict_chunk(self, obs) -> np.ndarray:
        state = np.asarray(obs[OBS_STATE], dtype=np.float32)
        x = np.concatenate([state, np.asarray(obs[OBS_ENV_STATE], dtype=np.float32), self.data.bag(str(obs[TASK]))])
        with torch.no_grad():
            y = self.model(torch.from_numpy(x)[None])[0]
            rel = (y * self.model.y_std + self.model.y_mean).view(self.model.chunk_size, self.model.action_dim)
        return (rel.numpy() + state[None, : self.model.action_dim]).astype(np.float32)[: self.n]


TAKEOVER_ROUND_SEEDS = 100_000  # each round starts this many seeds after the last


def bench_oracle(dataset, task_ids: list[str], train_steps: int, batch_size: int, episodes: int,
                 seed: int, chunk_size: int, n_action_steps: int, progress: bool = True,
                 takeover_rounds: int = 0, takeover_episodes: int = 100, workers: int | None = None) -> dict[str, Any]:
    """Train on `dataset` (a recorded dataset's path, or `SimDemos`) and score on seeds 0..episodes-1.
    `takeover_rounds`: then that many DAgger rounds of `takeover_episodes` per task (`SimDemos` only),
    each scored as the first; the report's `rounds` lists them."""
    if takeover_rounds and (not isinstance(dataset, SimDemos) or isinstance(dataset, SimStream)):
        raise ValueError("takeover rounds add episodes to demonstrations rolled out in memory (--sim-episodes, "
                         "without --stream)")
    if takeover_rounds < 0 or takeover_episodes < 1:
        raise ValueError(f"takeover_rounds={takeover_rounds}, takeover_episodes={takeover_episodes}; expected "
                         ">= 0 rounds of >= 1 episode per task")
    data = OracleData(dataset, chunk_size)  # a stream's warm-up episodes: normalization and words
    stream = dataset.cache(chunk_size, None, (OBS_STATE, OBS_ENV_STATE)) if isinstance(dataset, SimStream) else None
    try:
        model, trained = train_oracle(data, chunk_size, train_steps, batch_size, seed, stream=stream)
    finally:
        if stream is not None:
            stream.close()
    if stream is not None:
        trained["stream"] = stream.report
    report = evaluate("oracle-mlp", task_ids, make_env, lambda env: OraclePolicy(model, data, env, n_action_steps),
                      episodes, seed=0, progress=progress)
    result = {"dataset": getattr(dataset, "source", str(dataset)), "episodes_in_dataset": data.episodes,
              "frames": data.frames,
              "train_steps": train_steps, "batch_size": batch_size, "seed": seed, "chunk_size": chunk_size,
              "n_action_steps": n_action_steps, **trained,
              "successes": {t: r["successes"] for t, r in report["tasks"].items()},
              "overall": report["overall"], "eval_wall_time_s": report["wall_time_s"]}
    if takeover_rounds:
        result["rounds"] = []
        probe = make_env(task_ids[0])
        for r in range(takeover_rounds):
            driver = PolicyDetour(OraclePolicy(model, data, probe, n_action_steps))
            start = time.perf_counter()
            added = SimDemos(task_ids, takeover_episodes, seed=TAKEOVER_SEED + r * TAKEOVER_ROUND_SEEDS,
                             workers=workers, progress=progress, detours=1.0, detour=driver, images=False)
            dataset.episodes.extend(added.episodes)
            data = OracleData(dataset, chunk_size)
            model, trained = train_oracle(data, chunk_size, train_steps, batch_size, seed)
            report = evaluate("oracle-mlp", task_ids, make_env,
                              lambda env, model=model, data=data: OraclePolicy(model, data, env, n_action_steps),
                              episodes, seed=0, progress=progress)
            result["rounds"].append({
                "round": r + 1, "seeds_from": added.seed, "episodes_added": added.num_episodes,
                "dropped": dict(added.dropped),
                "roll_s": round(time.perf_counter() - start - trained["train_s"] - report["wall_time_s"], 1),
                "episodes_in_dataset": data.episodes, "frames": data.frames, **trained,
                "successes": {t: v["successes"] for t, v in report["tasks"].items()}, "overall": report["overall"]})
        probe.close()
    return result
