"""Training samples held in memory: decoded once from a LeRobot dataset, then served by indexing.

On a CPU-only machine video decoding would otherwise cost more than the model's step. The
arrays come from LeRobot's own reader (`vla.data.open_dataset`); chunks of K actions are cut
within each episode, the last action repeated past its end (the arm holds at the goal).
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import torch
from tqdm import tqdm

from vla.data.dataset import DatasetError, DemoDataset
from vla.model.inputs import frames_to_cache
from vla.types import ACTION, OBS_IMAGES_PREFIX, OBS_STATE, TASK


def chunk_indices(episode: np.ndarray, chunk_size: int) -> np.ndarray:
    """(N, chunk_size) frame indices of each frame's chunk, clipped at its episode's last frame.
    `episode`: each frame's episode index, frames of one episode contiguous."""
    N = len(episode)
    ends = np.zeros(N, dtype=np.int64)
    boundaries = np.flatnonzero(np.diff(episode)) + 1
    for start, stop in zip(np.r_[0, boundaries], np.r_[boundaries, N], strict=True):
        ends[start:stop] = stop - 1
    return np.minimum(np.arange(N)[:, None] + np.arange(chunk_size)[None, :], ends[:, None])


@dataclass
class DemoCache:
    images: torch.Tensor  # (N, C, 3, H, W) uint8
    state: torch.Tensor  # (N, S) float32
    actions: torch.Tensor  # (N, D) float32
    chunk_index: torch.Tensor  # (N, K) frame indices of each frame's action chunk
    texts: list[str]  # distinct instructions
    text_index: torch.Tensor  # (N,) index into texts
    cameras: list[str]
    aux: torch.Tensor | None = None  # (N, A) training-only grounding targets, when the model has them

    def __len__(self) -> int:
        return self.state.shape[0]

    @classmethod
    def from_dataset(cls, ds: DemoDataset, chunk_size: int, image_size: int, instruction_key: str = TASK,
                     progress: bool = True, state_keys: tuple[str, ...] | list[str] = (OBS_STATE,),
                     aux_keys: tuple[str, ...] | list[str] = ()) -> DemoCache:
        """Decode every frame once; all cameras are resized to the vision tower's square `image_size`.
        The state is `state_keys` concatenated, as the model reads it; `aux_keys` the grounding targets."""
        for what, keys in (("reads its state from", state_keys), ("is trained to predict", aux_keys)):
            missing = [k for k in keys if k not in ds.features]
            if missing:
                raise DatasetError(f"the policy {what} {list(keys)}; the dataset lacks {missing} "
                                   f"(it has {sorted(ds.features)}); record it again with `vla record`")
        hf = ds.lerobot.hf_dataset.with_format(None)

        def stacked(keys) -> torch.Tensor:
            return torch.cat([torch.tensor(np.asarray(hf[k], dtype=np.float32)).reshape(len(hf), -1) for k in keys], 1)

        state = stacked(state_keys)
        aux = stacked(aux_keys) if aux_keys else None
        actions = torch.tensor(np.asarray(hf[ACTION], dtype=np.float32))
        episode = np.asarray(hf["episode_index"]).reshape(-1)
        if instruction_key not in ds.features and instruction_key != TASK:
            raise ValueError(
                f"instruction key {instruction_key!r} is not a dataset feature; it has {sorted(ds.features)}"
            )
        N = len(state)
        images = None
        texts: dict[str, int] = {}
        text_index = torch.empty(N, dtype=torch.long)
        loader = torch.utils.data.DataLoader(ds.lerobot, batch_size=64, shuffle=False, num_workers=2)
        i = 0
        for batch in tqdm(loader, desc="decode dataset", unit="batch", disable=not progress):
            frames = torch.stack([frames_to_cache(batch[OBS_IMAGES_PREFIX + c], image_size) for c in ds.cameras], dim=1)
            if images is None:
                images = torch.empty((N, *frames.shape[1:]), dtype=torch.uint8)
            b = frames.shape[0]
            images[i : i + b] = frames
            for j, text in enumerate(batch[instruction_key]):
                text_index[i + j] = texts.setdefault(text, len(texts))
            i += b
        idx = chunk_indices(episode, chunk_size)
        return cls(images, state, actions, torch.tensor(idx), list(texts), text_index, list(ds.cameras), aux)

    def on(self, device: torch.device) -> DemoCache:
        """The frames, states and actions on `device` (a GPU: no per-step upload), when they take at
        most half its free memory; else this cache, frames pinned for faster copies. The text index
        stays on the CPU, where the instructions are looked up."""
        if device.type != "cuda":
            return self
        free, _ = torch.cuda.mem_get_info(device)
        if self.images.numel() > free // 2:
            return DemoCache(self.images.pin_memory(), self.state, self.actions, self.chunk_index, self.texts,
                             self.text_index, self.cameras, self.aux)
        return DemoCache(self.images.to(device), self.state.to(device), self.actions.to(device),
                         self.chunk_index.to(device), self.texts, self.text_index, self.cameras,
                         None if self.aux is None else self.aux.to(device))

    def aux_stats(self) -> tuple[torch.Tensor, torch.Tensor]:
        """Mean and standard deviation of the grounding targets over the frames held."""
        return self.aux.mean(0), self.aux.std(0)

    def draw(self, batch_size: int, generator: torch.Generator) -> torch.Tensor:
        """`batch_size` frames drawn uniformly, with replacement (a stream's buffer draws otherwise)."""
        return torch.randint(0, len(self), (batch_size,), generator=generator)

    def chunk(self, index: torch.Tensor) -> torch.Tensor:
        """(B, K, D) absolute action chunks of the given frames."""
        return self.actions[self.chunk_index[index]]

    def pad_mask(self, index: torch.Tensor) -> torch.Tensor:
        """(B, K) bool, LeRobot's `action_is_pad`: True at the chunk steps past the episode's last frame.

        There `chunk` repeats the last action. Chunk indices are clipped only at an episode's end, so a
        step is padding exactly when its frame is not the given frame + step."""
        K = self.chunk_index.shape[1]
        return self.chunk_index[index] != index[:, None] + torch.arange(K)

    def relative_quantiles(self, low_q: float = 0.01, high_q: float = 0.99) -> tuple[np.ndarray, np.ndarray]:
        """Per-dimension quantiles of (chunk action - current state): the range of relative targets."""
        return relative_quantiles(self.actions[self.chunk_index], self.state, low_q, high_q)


def relative_quantiles(chunks: torch.Tensor, state: torch.Tensor, low_q: float = 0.01,
                       high_q: float = 0.99) -> tuple[np.ndarray, np.ndarray]:
    """Per-dimension quantiles of (chunk action - current state) over (N, K, D) chunks and (N, S) states,
    from at most 2 M of the values (torch.quantile's input limit, and plenty for two percentiles)."""
    D = chunks.shape[2]
    rel = (chunks - state[:, None, :D]).reshape(-1, D)
    if len(rel) > 2_000_000:
        rel = rel[torch.randperm(len(rel), generator=torch.Generator().manual_seed(0))[:2_000_000]]
    return (torch.quantile(rel, low_q, dim=0).numpy(), torch.quantile(rel, high_q, dim=0).numpy())


def augment(images: torch.Tensor, generator: torch.Generator, shift: int = 6, jitter: float = 0.1) -> torch.Tensor:
    """Random shifts (pad and crop, as in DrQ) and brightness/contrast jitter; (B, C, 3, H, W) floats in [0, 1]."""
    B, C, ch, H, W = images.shape
    dev = images.device  # the random draws come from `generator` (CPU) wherever the images are
    x = images.flatten(0, 1)
    padded = torch.nn.functional.pad(x, (shift,) * 4, mode="replicate")
    dx = torch.randint(0, 2 * shift + 1, (B * C,), generator=generator).to(dev)
    dy = torch.randint(0, 2 * shift + 1, (B * C,), generator=generator).to(dev)
    rows = (dy[:, None] + torch.arange(H, device=dev)[None, :])[:, None, :, None].expand(-1, ch, -1, W + 2 * shift)
    x = padded.gather(2, rows)
    cols = (dx[:, None] + torch.arange(W, device=dev)[None, :])[:, None, None, :].expand(-1, ch, H, -1)
    x = x.gather(3, cols)
    gain = 1 + jitter * (2 * torch.rand(B * C, 1, 1, 1, generator=generator).to(dev) - 1)
    mean = x.mean(dim=(1, 2, 3), keepdim=True)
    contrast = 1 + jitter * (2 * torch.rand(B * C, 1, 1, 1, generator=generator).to(dev) - 1)
    x = ((x - mean) * contrast + mean) * gain
    return x.clamp(0, 1).view(B, C, ch, H, W)
