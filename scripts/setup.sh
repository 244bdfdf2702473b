#!/usr/bin/env bash
# Set up everything the stack needs on a fresh machine: system libraries for offscreen
# rendering, a Python 3.12 virtual environment in .venv, and the package with all extras.
# Idempotent; `make` calls it whenever pyproject.toml is newer than the last install.
#
# Python: $PYTHON if set, else python3.12 on PATH, else pyenv's 3.12.
set -euo pipefail
cd "$(dirname "$0")/.."
VENV=${VENV:-.venv}
EXTRAS=${EXTRAS:-sim,metaworld,train,ros,dev}

find_python() {
  if [ -n "${PYTHON:-}" ]; then echo "$PYTHON"; return; fi
  if command -v python3.12 >/dev/null 2>&1 && python3.12 -c "" >/dev/null 2>&1; then
    command -v python3.12; return
  fi
  if command -v pyenv >/dev/null 2>&1; then
    for p in "$(pyenv root)"/versions/3.12*/bin/python3.12; do
      [ -x "$p" ] && { echo "$p"; return; }
    done
  fi
  echo "setup: no Python 3.12 found; install it or set PYTHON=/path/to/python3.12" >&2
  exit 1
}

system_packages() {
  # MuJoCo renders offscreen through EGL (Mesa's llvmpipe on machines without a GPU).
  local missing=()
  ldconfig -p | grep -q 'libEGL.so.1' || missing+=(libegl1)
  ldconfig -p | grep -q 'libGL.so.1' || missing+=(libgl1)
  [ -e /usr/share/glvnd/egl_vendor.d/50_mesa.json ] || missing+=(libegl-mesa0 libgl1-mesa-dri)
  if [ ${#missing[@]} -gt 0 ]; then
    if [ "$(id -u)" = 0 ] && command -v apt-get >/dev/null; then
      echo "setup: installing ${missing[*]}"
      apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq "${missing[@]}"
    else
      echo "setup: please install ${missing[*]} (EGL for offscreen rendering)" >&2
    fi
  fi
}

system_packages
if [ ! -x "$VENV/bin/python" ]; then
  PY=$(find_python)
  "$PY" -c 'import sys; assert sys.version_info >= (3, 12), sys.version' \
    || { echo "setup: $PY is not Python >= 3.12" >&2; exit 1; }
  echo "setup: creating $VENV with $PY"
  "$PY" -m venv "$VENV"
fi
"$VENV/bin/python" -m pip install --quiet --upgrade pip
"$VENV/bin/python" -m pip install --quiet -e ".[${EXTRAS}]"
touch "$VENV/.installed"
echo "setup: done ($("$VENV/bin/python" --version), extras: $EXTRAS)"
