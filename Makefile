# Two commands for a newcomer: `make demo` and `make test`. Both create the environment in .venv/ when missing.
PYTHON ?= python3
VENV   := .venv
PY     := $(VENV)/bin/python
STAMP  := $(VENV)/.installed

DATA        ?= data
EXPERIMENTS ?= experiments
JOBS        ?= 2
DEMO_SWEEP  ?= configs/digits/demo.json
DEMO_OUT    ?= $(EXPERIMENTS)/demo

.PHONY: setup lint test demo activity bench gpu-check clean reproduce rehearsal worker

setup: $(STAMP)

# The runtime and the test extra at the versions locked in uv.lock (hash-checked), then this checkout, editable.
# uv only exports the lock's selection as a requirements list; pip installs it. After changing a dependency in
# pyproject.toml: `$(VENV)/bin/uv lock` (README, "Dependencies"). The installers' versions (the Dockerfile's too):
PIP_VERSION := 26.3
UV_VERSION  := 0.13.9

$(STAMP): pyproject.toml uv.lock
	$(PYTHON) -m venv $(VENV)
	$(VENV)/bin/pip install --quiet pip==$(PIP_VERSION) uv==$(UV_VERSION)
	$(VENV)/bin/uv export --quiet --frozen --no-emit-project --extra test -o $(VENV)/locked.txt
	$(VENV)/bin/pip install --quiet --require-hashes -r $(VENV)/locked.txt
	$(VENV)/bin/pip install --quiet --no-deps --no-build-isolation -e .
	touch $(STAMP)

# The whole pipeline on the embedded digits zoo: sweep (resumes; exit 1 = some task failed, listed in the report),
# accuracies, neural persistence / deep graph persistence measures, statistics, report (measures.csv beside the
# accuracies CSV is picked up by the report). The sweep file's output_root is $(DEMO_OUT)/runs.
demo: $(STAMP)
	$(PY) scripts/run_sweep.py $(DEMO_SWEEP) --executor local --workers $(JOBS) || test $$? -eq 1
	$(PY) accuracies/collect_accuracies.py --sweep $(DEMO_SWEEP) --out $(DEMO_OUT)/accuracies.csv --force
	$(PY) scripts/measure.py --runs $(DEMO_OUT)/runs --out $(DEMO_OUT)/measures.csv
	$(PY) extract_statistics.py --accuracies $(DEMO_OUT)/accuracies.csv --out $(DEMO_OUT)/statistics --force
	$(PY) scripts/make_report.py --accuracies $(DEMO_OUT)/accuracies.csv --statistics $(DEMO_OUT)/statistics \
		--out $(DEMO_OUT)/report --title "Digits demo: $(DEMO_SWEEP)" --force
	@echo "Report: $(DEMO_OUT)/report/report.md (one page with the figures: $(DEMO_OUT)/report/report.html)"

# README "Did the regulariser act, and is the gain real?": the digits zoo under the paper profile, the baseline over
# 3 seeds; statistics under the matched rule (every treatment's expected best of n draws at one n; the paper's rule
# beside it). Runs go to $(ACTIVITY_OUT)/runs.
ACTIVITY_SWEEP ?= configs/digits/activity_seeds.json
ACTIVITY_OUT   ?= $(EXPERIMENTS)/activity

activity: $(STAMP)
	$(PY) scripts/run_sweep.py $(ACTIVITY_SWEEP) --executor local --workers $(JOBS) \
		--set output_root=$(ACTIVITY_OUT)/runs || test $$? -eq 1
	$(PY) accuracies/collect_accuracies.py $(ACTIVITY_OUT)/runs --sweep $(ACTIVITY_SWEEP) --out $(ACTIVITY_OUT)/accuracies.csv \
		--force
	$(PY) extract_statistics.py --accuracies $(ACTIVITY_OUT)/accuracies.csv --out $(ACTIVITY_OUT)/statistics --baseline matched \
		--force
	$(PY) scripts/make_report.py --accuracies $(ACTIVITY_OUT)/accuracies.csv --statistics $(ACTIVITY_OUT)/statistics \
		--out $(ACTIVITY_OUT)/report --title "Did the regulariser act? $(ACTIVITY_SWEEP)" --force
	$(PY) scripts/sweep_status.py $(ACTIVITY_SWEEP) --set output_root=$(ACTIVITY_OUT)/runs
	@echo "Report: $(ACTIVITY_OUT)/report/report.md"

# The paper end to end (data -> zoos -> both sweeps -> accuracies -> statistics -> report) on whatever GPUs this
# machine has (one task per GPU; CPU workers when there is none). Every step resumes: run it again after a crash.
# PROFILE=corrected|paper; SWEEP_ARGS go to run_sweep.py (both sweeps), e.g. "--tasks-per-gpu 2", "--executor ray
# --address HEAD:6379" or, on a Slurm login node, "--executor slurm --partition gpu" (one job array per sweep, waited
# for); a trial first: SWEEP_ARGS="--only network=mnist/0,pgdl/task1_v4/20 --only weight=0.0,0.01 --set max_epochs=2"
# (README, "Trying a sweep"). MNIST_ARGS go to prepare_mnist.py, PGDL_ARGS to download_pgdl.py (e.g. "--url MIRROR",
# "--pins FILE"). Runs go to $(REPRO_OUT); a failed task does not stop the others and is listed in the report.
PROFILE    ?= corrected
REPRO_OUT  ?= $(EXPERIMENTS)/paper/$(PROFILE)
SWEEP_ARGS ?=
MNIST_ARGS ?=
PGDL_ARGS  ?=
SWEEP      ?= configs/paper/mnist_$(PROFILE).json
GPU        ?= 0
PLACE      := --set data_root=$(DATA) --set output_root=$(REPRO_OUT)

reproduce: $(STAMP)
	$(PY) scripts/prepare_mnist.py --data-root $(DATA) $(MNIST_ARGS)
	$(PY) scripts/make_mnist_zoo.py --data-root $(DATA)
	$(PY) scripts/download_pgdl.py --data-root $(DATA) $(PGDL_ARGS)
	$(PY) scripts/run_sweep.py configs/paper/mnist_$(PROFILE).json $(PLACE) $(SWEEP_ARGS) || test $$? -eq 1
	$(PY) scripts/run_sweep.py configs/paper/pgdl_$(PROFILE).json $(PLACE) $(SWEEP_ARGS) || test $$? -eq 1
	$(PY) accuracies/collect_accuracies.py $(REPRO_OUT) --out $(REPRO_OUT)/accuracies.csv --force
	$(PY) scripts/measure.py --runs $(REPRO_OUT) --pgdl $(DATA)/pgdl/input_data/task1_v4 --out $(REPRO_OUT)/measures.csv
	$(PY) extract_statistics.py --accuracies $(REPRO_OUT)/accuracies.csv --out $(REPRO_OUT)/statistics --force
	$(PY) scripts/make_report.py --accuracies $(REPRO_OUT)/accuracies.csv --statistics $(REPRO_OUT)/statistics \
		--out $(REPRO_OUT)/report --title "Decorrelating neurons using persistence: $(PROFILE) profile" --force
	@echo "Report: $(REPRO_OUT)/report/report.md (one page with the figures: $(REPRO_OUT)/report/report.html)"

# `reproduce` rehearsed offline in minutes (tests/test_rehearsal.py runs it): the same recipe, for both profiles,
# against loopback MNIST and PGDL mirrors that tests/rehearsal.py starts (synthetic data: the numbers mean nothing),
# on the few tasks REHEARSAL_ARGS choose, into $(REHEARSAL_OUT). Run it again: everything resumes.
REHEARSAL_OUT  ?= $(EXPERIMENTS)/rehearsal
REHEARSAL_ARGS ?= --only network=mnist/0,mnist/2,pgdl/task1_v4/20,pgdl/task1_v4/148 --only regulariser=none,t1 \
	--only weight=0.0,0.1 --set max_epochs=1 --workers $(JOBS)

rehearsal: $(STAMP)
	$(PY) tests/rehearsal.py --out $(REHEARSAL_OUT) --make "$(MAKE) -o $(STAMP)" --sweep-args "$(REHEARSAL_ARGS)"

# One worker on GPU $(GPU) for $(SWEEP) (default: the MNIST sweep of $(PROFILE)); start one per GPU, on any machine
# that sees the same $(EXPERIMENTS): claims keep two workers off one task. In Docker, see the README's "Docker".
# A GPU TensorFlow does not see (no `gpu` extra: README, "GPUs") is an error; SWEEP_ARGS=--allow-cpu goes on on the CPU.
worker: $(STAMP)
	$(PY) scripts/run_sweep.py $(SWEEP) --gpus $(GPU) $(PLACE) $(SWEEP_ARGS)

# ruff (pinned in the test extra, configured in pyproject.toml) over the whole repo; `make test` runs it first.
lint: $(STAMP)
	$(VENV)/bin/ruff check .

# --dist loadgroup: tests marked xdist_group("slurm") share one worker, hence one Slurm cluster (tests/test_slurm.py).
test: lint
	$(PY) -m pytest -n $(JOBS) --dist loadgroup tests

# The benchmarks' baselines (the `bench` extra: giotto-ph; Linux x86-64 / macOS, Python <= 3.12), from the lock.
$(VENV)/.installed-bench: $(STAMP)
	$(VENV)/bin/uv export --quiet --frozen --no-emit-project --extra bench -o $(VENV)/locked-bench.txt
	$(VENV)/bin/pip install --quiet --require-hashes -r $(VENV)/locked-bench.txt
	touch $@

bench: $(VENV)/.installed-bench
	$(PY) benchmarks/bench_pairing.py
	$(PY) benchmarks/bench_training.py
	$(PY) benchmarks/bench_sweeps.py

# Does the GPU path work on this machine, and how fast is it (≤ 5 min on one GPU)? Versions, the GPU TensorFlow sees,
# in-graph Borůvka vs host Prim, a digits run under T1 with XLA, step times, tasks per hour at 1/2/4 tasks per GPU.
# Without a GPU it says so and runs the CPU/XLA checks. Send back benchmarks/results/gpu_check.txt. GPU_CHECK_ARGS go to
# gpu_check.py (e.g. "--quick": small sizes, seconds; tests/test_gpu_check.py).
GPU_CHECK_ARGS ?=

gpu-check: $(STAMP)
	$(PY) benchmarks/gpu_check.py --data-root $(DATA) $(GPU_CHECK_ARGS)

clean:
	rm -rf $(VENV) .pytest_cache
