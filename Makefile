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

.PHONY: setup test demo bench clean

setup: $(STAMP)

$(STAMP): requirements.txt pyproject.toml
	$(PYTHON) -m venv $(VENV)
	$(VENV)/bin/pip install --quiet --upgrade pip
	$(VENV)/bin/pip install --quiet -r requirements.txt
	$(VENV)/bin/pip install --quiet --no-deps --no-build-isolation -e .
	touch $(STAMP)

# The whole pipeline on the embedded digits zoo: sweep (resumes; exit 1 = some task failed, listed in the report),
# accuracies, statistics, report. The sweep file's output_root is $(DEMO_OUT)/runs.
demo: $(STAMP)
	$(PY) scripts/run_sweep.py $(DEMO_SWEEP) --executor local --workers $(JOBS) || test $$? -eq 1
	$(PY) accuracies/collect_accuracies.py --sweep $(DEMO_SWEEP) --out $(DEMO_OUT)/accuracies.csv --force
	$(PY) extract_statistics.py $(DEMO_OUT)/accuracies.csv --out $(DEMO_OUT)/statistics --force
	$(PY) scripts/make_report.py --accuracies $(DEMO_OUT)/accuracies.csv --statistics $(DEMO_OUT)/statistics \
		--out $(DEMO_OUT)/report --title "Digits demo: $(DEMO_SWEEP)" --force
	@echo "Report: $(DEMO_OUT)/report/report.md"

test: $(STAMP)
	$(PY) -m pytest -n $(JOBS) tests

bench: $(STAMP)
	$(PY) benchmarks/bench_pairing.py

clean:
	rm -rf $(VENV) .pytest_cache
