#!/usr/bin/env bash
# One session on a lent GPU machine with no network (how the GPU figures in docs/BENCHMARKS.md were
# made): `vla bench gpu`, then scripts/gpu_arms.py trains recipe arms until the deadline. Results go
# to $OUT as soon as they exist. The machine has PyTorch but not this project's other dependencies:
# the wheels in .whl/ (transformers, tokenizers, mujoco 3.3.7 as pinned, gymnasium, PyOpenGL) and the GL loader
# packages in .gl/ travel with the tree. On a machine set up with `make setup`, run the two commands
# below with the venv's python instead.
#   OUT=/path bash scripts/gpu_session.sh [total seconds, default 555] [bench cap seconds, default 210; 0 skips it]
# ARMS, EPISODES (per task) and DETOURS (the share of recovery demonstrations) choose the training arms;
# the defaults train the shipped recipe (continuous_named) beside it with the convolutional stem
# (continuous_named_conv), on more demonstrations than the shipped policy saw (300 per task).
set -u
START=$(date +%s)
TOTAL=${1:-555}
BENCH_CAP=${2:-210}
OUT=${OUT:?set OUT to a folder for the results}
mkdir -p "$OUT"
if [ -d .gl ]; then for f in .gl/*.deb; do dpkg -x "$f" /; done; ldconfig; fi
if [ -d .whl ]; then
  python3 -m pip install -q --no-index --no-deps --no-compile --no-cache-dir --upgrade --target /tmp/site .whl/*.whl || exit 1
  export PYTHONPATH=/tmp/site:$PWD
fi
export PYTHONUNBUFFERED=1 MUJOCO_GL=egl
vendor=/usr/local/nvidia/share/glvnd/egl_vendor.d/10_nvidia.json  # NVIDIA's EGL, for MuJoCo's renderer
[ -f "$vendor" ] && export __EGL_VENDOR_LIBRARY_FILENAMES=$vendor
nvidia-smi --query-gpu=name,memory.total,driver_version --format=csv,noheader
echo "setup done at $(( $(date +%s) - START )) s"
# 1. inference on this card, alone on it (each figure written as it is measured)
if [ "$BENCH_CAP" -gt 0 ]; then
  timeout "$BENCH_CAP" python3 -m vla bench gpu --policy policies/tiny_sim_single --repeats 50 --ar-repeats 10 \
    --report "$OUT/gpu.json" > "$OUT/bench_gpu.log" 2>&1
  echo "bench gpu: exit $? at $(( $(date +%s) - START )) s"; tail -3 "$OUT/bench_gpu.log"
fi
# 2. training arms until the deadline
python3 scripts/gpu_arms.py --out "$OUT" --arms "${ARMS:-continuous_named,continuous_named_conv}" --episodes "${EPISODES:-500}" \
  --detours "${DETOURS:-0}" --deadline $(( START + TOTAL ))
echo "session done at $(( $(date +%s) - START )) s"
