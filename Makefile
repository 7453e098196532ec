# One entry point for people and CI. `make test` is the README's test command; `make drill` its
# main job. Both create ./venv from the requirements files first (pip skips what is present).
PY ?= python3
VENV := venv
BIN := $(VENV)/bin

.PHONY: setup test lint typecheck unit drill faults
setup: $(VENV)/.installed

$(VENV)/.installed: requirements.txt requirements-dev.txt
	test -x $(BIN)/python || $(PY) -m venv $(VENV)
	$(BIN)/pip install --quiet --upgrade pip
	$(BIN)/pip install --quiet -r requirements-dev.txt
	touch $@

lint: setup
	$(BIN)/ruff check .

typecheck: setup
	$(BIN)/mypy

unit: setup
	$(BIN)/python -m pytest -q

test: lint typecheck unit

# The full fault-injection walk of failover.py (issue 10): a kill at every journal write, lock
# transition and AWS change, then the runs an operator would try. About two minutes.
faults: setup
	$(BIN)/python -m pytest -q -m faults

drill: setup
	$(BIN)/python scripts/drill.py
