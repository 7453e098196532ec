# One entry point for people and CI. `make test` is the README's test command; `make drill` its
# main job. Both create ./venv from the requirements files and install this project into it
# first (pip skips what is present).
PY ?= python3
VENV := venv
BIN := $(VENV)/bin
# Checkov pins many packages of its own: it gets its own virtualenv, never ./venv.
CHECKOV_VENV := .venv-checkov

.PHONY: setup test lint typecheck unit drill drill-sweep faults checkov-setup scan
setup: $(VENV)/.installed

# Set-up shows its progress (a fresh one takes minutes): a numbered line per stage, and pip's
# own line per package it collects or installs (no --quiet).
$(VENV)/.installed: requirements.txt requirements-dev.txt pyproject.toml
	@echo "setup [1/4] $$(date +%T) virtualenv $(VENV)"
	test -x $(BIN)/python || $(PY) -m venv $(VENV)
	@echo "setup [2/4] $$(date +%T) pip itself"
	$(BIN)/pip install --progress-bar off --upgrade pip
	@echo "setup [3/4] $$(date +%T) requirements-dev.txt (already present packages are skipped)"
	$(BIN)/pip install --progress-bar off -r requirements-dev.txt
	@echo "setup [4/4] $$(date +%T) this project, editable: the caresync-* commands on $(BIN)"
	$(BIN)/pip install --progress-bar off --no-deps -e .
	@echo "setup done $$(date +%T)"
	touch $@

lint: setup
	$(BIN)/ruff check .

typecheck: setup
	$(BIN)/mypy

# The tests run in one pytest-xdist worker process, in their usual order. A test that hangs is
# ended with its stacks by faulthandler (pyproject: faulthandler_timeout), which ends the worker;
# xdist starts a new one and pytest-rerunfailures runs that test once more, at most 3 times in a
# run. `--only-rerun '(?!)'` (a pattern that matches no error) keeps every ordinary failure a
# failure: only a test whose worker crashed is run again, and the log keeps its stacks and "R".
# A worker crash of another kind (a segfault, os._exit) is run again too: a flaky crash passes
# on its rerun, and CI stays green with a RERUN line (.ci/run prints every one at its end).
# -raR: addopts' -ra (the failures' and skips' summary) plus the reruns; a later -r replaces it.
HANG_RERUN := -n 1 --max-worker-restart 4 --reruns 1 --only-rerun '(?!)' --max-suite-reruns 3 -raR

unit: setup
	$(BIN)/python -m pytest -q $(HANG_RERUN)

test: lint typecheck unit

# The full fault-injection walk of failover.py (issue 10): a kill at every journal write, lock
# transition and AWS change, and every injected AWS fault, then the runs an operator would
# try; and a restore SIGKILLed at each of its steps (tests/backup/test_kill_points.py). About
# five minutes.
faults: setup
	$(BIN)/python -m pytest -q -m faults $(HANG_RERUN)

drill: setup
	$(BIN)/python scripts/drill.py

# What killed drills left in /tmp (their PostgreSQL servers and directories); a live drill's
# are never touched. Every drill does this first.
drill-sweep: setup
	$(BIN)/python scripts/drill.py --sweep

checkov-setup: $(CHECKOV_VENV)/.installed

$(CHECKOV_VENV)/.installed: requirements-checkov.txt
	test -x $(CHECKOV_VENV)/bin/python || $(PY) -m venv $(CHECKOV_VENV)
	$(CHECKOV_VENV)/bin/pip install --quiet --upgrade pip
	$(CHECKOV_VENV)/bin/pip install --quiet -r requirements-checkov.txt
	touch $@

# Checkov over both stacks' plan exports in every bootstrap state (docs/checkov.md).
scan: setup checkov-setup
	$(BIN)/python scripts/security_scan.py --checkov $(CHECKOV_VENV)/bin/checkov \
	  --report reports/checkov/scan.json
