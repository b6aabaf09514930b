# Two commands for a newcomer: `make demo` and `make test`. Both create the environment in .venv/ when missing.
PYTHON ?= python3
VENV   := .venv
PY     := $(VENV)/bin/python
STAMP  := $(VENV)/.installed

DATA        ?= data
EXPERIMENTS ?= experiments
JOBS        ?= 2

.PHONY: setup test demo bench clean

setup: $(STAMP)

$(STAMP): requirements.txt pyproject.toml
	$(PYTHON) -m venv $(VENV)
	$(VENV)/bin/pip install --quiet --upgrade pip
	$(VENV)/bin/pip install --quiet -r requirements.txt
	$(VENV)/bin/pip install --quiet --no-deps --no-build-isolation -e .
	touch $(STAMP)

test: $(STAMP)
	$(PY) -m pytest -n $(JOBS) tests

clean:
	rm -rf $(VENV) .pytest_cache
