"""The GPU inference path (vla.model.fast) on CPU: the static path equals the eager model, the
compiled step equals the eager step, and the memory report counts what it says."""

import numpy as np
import pytest
import torch

from tests.vla.helpers import mini_model
from vla.model.fast import FastVLA, inference_dtype
from vla.model.vla import Batch


def inputs(model, seed=0):
    rng = np.random.default_rng(seed)
    frames = [rng.integers(0, 255, (64, 64, 3)).astype(np.uint8) for _ in model.config.cameras]
    state = rng.uniform(-1, 1, model.config.state_dim).astype(np.float32)
    return frames, "pick up the red cube", state


def batch(frames, task, state):
    images = torch.stack([torch.from_numpy(f).permute(2, 0, 1) for f in frames])[None]
    return Batch(images, [task], torch.from_numpy(state)[None])


def eager(model, frames, task, state, decoding):
    return model.predict(batch(frames, task, state), decoding)[0].numpy()


def fast_predict(fast, frames, task, state, decoding="parallel"):
    return fast.predict(batch(frames, task, state), decoding)


@pytest.mark.parametrize("decoding", ["parallel", "autoregressive"])
def test_static_path_equals_the_eager_model(decoding):
    model = mini_model()
    fast = FastVLA(model, "cpu", compile=False)
    for seed in range(3):
        frames, task, state = inputs(model, seed)
        np.testing.assert_allclose(fast_predict(fast, frames, task, state, decoding),
                                   eager(model, frames, task, state, decoding), atol=1e-5)


@pytest.mark.slow  # torch.compile: ~20 s of compiling on CPU
def test_compiled_step_equals_eager_within_tolerance():
    model = mini_model()
    frames, task, state = inputs(model, 1)
    want = fast_predict(FastVLA(model, "cpu", compile=False), frames, task, state, "parallel")
    got = fast_predict(FastVLA(model, "cpu", compile=True), frames, task, state, "parallel")
    bin_width = (model.action_tok.high - model.action_tok.low) / model.config.bins
    assert np.all(np.abs(got - want) <= bin_width + 1e-6)


def test_bf16_stays_within_a_few_bins_of_fp32():
    model = mini_model()
    frames, task, state = inputs(model, 2)
    want = fast_predict(FastVLA(model, "cpu", dtype="fp32", compile=False), frames, task, state, "parallel")
    got = fast_predict(FastVLA(model, "cpu", dtype="bf16", compile=False), frames, task, state, "parallel")
    bin_width = (model.action_tok.high - model.action_tok.low) / model.config.bins
    assert np.mean(np.abs(got - want) <= 2 * bin_width + 1e-6) >= 0.9  # bf16 tolerance: most within 2 bins


def test_dtype_choice_and_bad_names():
    assert inference_dtype(torch.device("cpu")) == torch.float32
    assert inference_dtype(torch.device("cpu"), "bf16") == torch.bfloat16
    with pytest.raises(ValueError, match="dtype='int8'"):
        inference_dtype(torch.device("cpu"), "int8")


def test_memory_report_counts_parameters_on_the_meta_device():
    from vla.bench.gpu import memory
    from vla.model.config import load_model_config

    small = memory(load_model_config("smolvlm-256m", cameras=["a", "b"], state_dim=8, action_dim=8))
    large = memory(load_model_config("smolvlm-2b", cameras=["a", "b"], state_dim=8, action_dim=8))
    assert 200 < small["parameters_m"] < 320 and 1800 < large["parameters_m"] < 2600
    assert small["weights_mib"] == pytest.approx(small["parameters_m"] * 1e6 * 2 / 2**20, rel=0.01)
    assert 0 < small["kv_cache_mib"] < large["kv_cache_mib"]


@pytest.mark.slow  # the whole GPU bench on CPU
def test_gpu_bench_script_runs_on_cpu_and_names_the_device():
    """The script that will run on a GPU runs end to end here (few repeats, no compile, no big model)."""
    from vla.bench.gpu import bench_gpu
    from vla.cli import SHIPPED_POLICY

    report = bench_gpu(str(SHIPPED_POLICY), repeats=2, device="cpu", sizes=("smolvlm-2b",), compile_ok=False)
    assert report["device"].startswith("CPU")
    rows = report["latency"]["shipped"]
    for key in ("eager_fp32/parallel", "eager_bf16/parallel", "event/dense", "event/reuse@0.25"):
        assert rows[key]["median_ms"] > 0, key
    assert not [k for k, v in rows.items() if isinstance(v, dict) and "error" in v], rows
    # the shipped continuous head has no autoregressive mode: not timed, rather than an error row
    assert not [k for k in rows if k.endswith("/autoregressive")]
    assert rows["event/reuse@0.25"]["patches_recomputed"] == 32  # a quarter of 2 x 64 patches, as asked
    assert report["memory"]["smolvlm-2b"]["parameters_m"] > 1800
