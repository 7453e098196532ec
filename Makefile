# One entry point for people and CI. `make test` is the README's test command; `make drill` its
# main job. Both create ./venv from the requirements files first (pip skips what is present).
PY ?= python3
VENV := venv
BIN := $(VENV)/bin

.PHONY: setup test lint typecheck unit drill
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

drill: setup
	$(BIN)/python scripts/drill.py
