# Every target sets itself up: the first run creates .venv and installs the stack.
VENV ?= .venv
PY := $(VENV)/bin/python
VLA := $(VENV)/bin/vla
export MUJOCO_GL ?= egl

.PHONY: setup demo test test-all lint bench clean

$(VENV)/.installed: pyproject.toml scripts/setup.sh
	./scripts/setup.sh

setup: $(VENV)/.installed

## The main job: every task rolled out in the simulator, with videos and a JSON report in out/demo.
demo: $(VENV)/.installed
	$(VLA) demo --out out/demo

## The default test suite (fast; excludes tests marked slow).
test: $(VENV)/.installed
	$(PY) -m pytest -m "not slow"

test-all: $(VENV)/.installed
	$(PY) -m pytest

lint: $(VENV)/.installed
	$(VENV)/bin/ruff check vla sim tests

## Benchmarks behind docs/BENCHMARKS.md (scripts, not tests). Reports land in out/bench.
bench: $(VENV)/.installed
	$(VLA) bench sim --report out/bench/sim.json
	$(VLA) bench data --tasks single --episodes 10 --report out/bench/data.json
	$(VLA) bench decoding --policy policies/tiny_sim_single --report out/bench/decoding.json
	$(VLA) bench handover --policy policies/tiny_sim_single --task pick --episodes 20 --report out/bench/handover.json
	$(VLA) bench serving --policy policies/tiny_sim_single --report out/bench/serving.json
	$(VLA) bench rosbag --report out/bench/rosbag.json
	$(VLA) bench ros-record --report out/bench/ros_record.json
	$(VLA) eval --policy scripted --tasks all --episodes 100 --seed 0 --report out/bench/expert_100.json --quiet
	$(VLA) eval --policy policies/tiny_sim_single --tasks single --episodes 100 --seed 0 \
		--report out/bench/policy_100.json --quiet

clean:
	rm -rf out .pytest_cache
