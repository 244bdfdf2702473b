# Every target sets itself up: the first run creates .venv and installs the stack.
VENV ?= .venv
PY := $(VENV)/bin/python
VLA := $(VENV)/bin/vla
export MUJOCO_GL ?= egl

.PHONY: setup demo test test-all mutation lint bench bench-peers bench-metaworld bench-chunk bench-planner bench-gpu clean

$(VENV)/.installed: pyproject.toml scripts/setup.sh
	./scripts/setup.sh

setup: $(VENV)/.installed

## The main job: every task rolled out in the simulator, with videos and a JSON report in out/demo.
demo: $(VENV)/.installed
	$(VLA) demo --out out/demo

## The fast suite (under 5 minutes on 2 cores): everything but the tests marked slow. Each run shuffles
## the order (pytest-randomly; the seed is printed, `-p no:randomly` turns it off).
test: $(VENV)/.installed
	$(PY) -m pytest -m "not slow"

## Everything, the slow tests too (torch.compile, peer training, long recordings, ROS end-to-end); CI runs this.
test-all: $(VENV)/.installed
	$(PY) -m pytest

## Mutation testing of the code that guards the arm (safety filter, chunk executor, watchdog, serving
## codec, action tokenizer) against its fast tests; [tool.mutmut] in pyproject.toml says which. Prints the
## score per module and fails on a survivor not listed in tests/mutation/EQUIVALENT.md. mutants/ is
## mutmut's scratch copy of the tree (git-ignored; `make test` collects only tests/).
mutation: $(VENV)/.installed
	rm -rf mutants && mkdir -p out
	OMP_NUM_THREADS=1 $(VENV)/bin/mutmut run --max-children $${MUTATION_JOBS:-2} > out/mutmut.log 2>&1 \
		|| { tail -n 40 out/mutmut.log; exit 1; }
	$(PY) scripts/mutation_score.py

lint: $(VENV)/.installed
	$(VENV)/bin/ruff check vla sim tests ros2_ws

## Benchmarks behind docs/BENCHMARKS.md (scripts, not tests). Reports land in out/bench.
bench: $(VENV)/.installed
	$(VLA) bench sim --report out/bench/sim.json
	$(VLA) bench data --tasks single --episodes 10 --report out/bench/data.json
	$(VLA) bench decoding --policy policies/tiny_sim_single --report out/bench/decoding.json
	$(VLA) bench handover --policy policies/tiny_sim_single --task pick --episodes 10 --report out/bench/handover.json
	$(VLA) bench serving --policy policies/tiny_sim_single --report out/bench/serving.json
	$(VLA) bench rosbag --report out/bench/rosbag.json
	$(VLA) bench ros-record --report out/bench/ros_record.json
	$(VLA) bench ros-eval --policy policies/tiny_sim_single --tasks single --episodes 13 --seed 0 \
		--report out/bench/ros_eval.json
	$(VLA) eval --policy scripted --tasks all --episodes 100 --seed 0 --report out/bench/expert_100.json --quiet
	$(VLA) eval --policy policies/tiny_sim_single --tasks single --episodes 100 --seed 0 \
		--report out/bench/policy_100.json --quiet
	$(VLA) bench sparsity --policy policies/tiny_sim_single --tasks single --episodes 20 --sweep-episodes 10 \
		--plot docs/img/sparsity_sweep.png --report out/bench/sparsity.json
	$(VLA) bench events --policy policies/tiny_sim_single --tasks single --seeds 10 --report out/bench/events.json
	$(VLA) bench reuse --size smolvlm-256m --repeats 5 --device cpu --report out/bench/reuse_256m_cpu.json

## Our VLA vs LeRobot's ACT and Diffusion Policy, same data and steps: 500 demonstrations, then 50.
bench-peers: $(VENV)/.installed
	test -f out/data/sim_single_100/meta/info.json || \
		$(VLA) record --tasks single --episodes 100 --out out/data/sim_single_100
	rm -rf out/peers/full
	$(VLA) bench peers --dataset out/data/sim_single_100 --train-steps 1000 --batch-size 32 --episodes 20 \
		--out out/peers/full --report out/bench/peers_full.json
## The same comparison with 10 demonstrations per task (data efficiency).
	test -f out/data/sim_single_10/meta/info.json || \
		$(VLA) record --tasks single --episodes 10 --out out/data/sim_single_10
	rm -rf out/peers/small
	$(VLA) bench peers --dataset out/data/sim_single_10 --train-steps 1000 --batch-size 32 --episodes 20 \
		--out out/peers/small --report out/bench/peers_small.json

## Meta-World MT10 (docs/BENCHMARKS.md): the experts on MT50, then the tiny VLA for 40 minutes and
## ACT and Diffusion Policy for the same wall time on 50 demonstrations per task, 10 episodes per
## task each, and the VLA open loop on held-out demonstrations. About 4 hours on 2 CPU cores (the sum of
## the steps' times in docs/BENCHMARKS.md).
MW_DATA = out/data/mt10_50
bench-metaworld: $(VENV)/.installed
	$(VLA) eval --policy scripted --tasks metaworld/mt50 --episodes 10 --seed 0 \
		--report out/bench/mw_expert_mt50.json --quiet
	test -f $(MW_DATA)/meta/info.json || $(VLA) record --tasks metaworld/mt10 --episodes 50 --out $(MW_DATA)
	test -f out/data/mt10_heldout/meta/info.json || \
		$(VLA) record --tasks metaworld/mt10 --episodes 3 --seed 5000 --out out/data/mt10_heldout
	rm -rf out/train/mw_mt10 out/peers/mw_mt10
	$(VLA) train --dataset $(MW_DATA) --out out/train/mw_mt10 --action-tokens per_step --gripper physical \
		--batch-size 32 --lr 6e-4 --parallel-fraction 1.0 --time-budget 40m --seed 0
	$(VLA) eval --policy out/train/mw_mt10 --tasks metaworld/mt10 --episodes 10 --seed 0 \
		--report out/bench/mw_vla_mt10.json --quiet
	$(VLA) eval --policy out/train/mw_mt10 --heldout out/data/mt10_heldout --report out/bench/mw_vla_mt10_heldout.json
	$(VLA) bench peers --policies act,diffusion --dataset $(MW_DATA) --time-budget 2358s --batch-size 32 \
		--tasks metaworld/mt10 --episodes 10 --seed 0 --out out/peers/mw_mt10 --report out/bench/mw_peers.json

## The chunk length K: one tiny VLA per K on the same data and steps, scored open loop on held-out
## demonstrations (seeds 9000+) and closed loop in the sim.
bench-chunk: $(VENV)/.installed
	test -f out/data/sim_single_100/meta/info.json || \
		$(VLA) record --tasks single --episodes 100 --out out/data/sim_single_100
	test -f out/data/sim_single_heldout/meta/info.json || \
		$(VLA) record --tasks single --episodes 6 --seed 9000 --out out/data/sim_single_heldout
	rm -rf out/chunk
	$(VLA) bench chunk --dataset out/data/sim_single_100 --heldout out/data/sim_single_heldout --chunks 4,10,20 \
		--train-steps 1000 --batch-size 32 --episodes 20 --out out/chunk --report out/bench/chunk.json

## The planner on the multi-step tasks: held-out accuracy, then flat vs System-1 vs System-2 and
## re-planning after a perturbation, with the scripted skills and with the shipped VLA executing.
## (docs/BENCHMARKS.md ran the two halves of each pair side by side with OMP_NUM_THREADS=1.)
PLANNER_BENCH = $(VLA) bench planner --planner policies/tiny_sim_planner --episodes 34
bench-planner: $(VENV)/.installed
	$(PLANNER_BENCH) --policy scripted-skills --heldout-episodes 20 --arms flat,system1,system2 \
		--report out/bench/planner_skills_a.json
	$(PLANNER_BENCH) --policy scripted-skills --heldout-episodes 0 --arms perturbed_no_replan,perturbed_replan \
		--report out/bench/planner_skills_b.json
	$(PLANNER_BENCH) --policy policies/tiny_sim_single --heldout-episodes 0 --arms flat,system1 \
		--report out/bench/planner_vla_a.json
	$(PLANNER_BENCH) --policy policies/tiny_sim_single --heldout-episodes 0 --arms system2 \
		--report out/bench/planner_vla_b.json

## The GPU inference path (vla bench gpu): one prepared run for a machine with a CUDA card.
bench-gpu: $(VENV)/.installed
	$(VLA) bench gpu --policy policies/tiny_sim_single --repeats 50 --report out/bench/gpu.json

clean:
	rm -rf out .pytest_cache mutants
