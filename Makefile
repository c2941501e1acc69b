# Two commands on a fresh clone: `make demo` and `make test`.
# Each creates or refreshes .venv from uv.lock; only python3 is assumed.
PYTHON ?= python3
VENV := .venv
UV := $(VENV)/bin/uv
STAMP := $(VENV)/.synced
UV_VERSION := 0.13.8
export UV_PROJECT_ENVIRONMENT := $(abspath $(VENV))
export MLFLOW_DISABLE_TELEMETRY := true

.PHONY: demo test test-all lint typecheck bench clean venv

venv: $(STAMP)

$(UV):
	$(PYTHON) -m venv $(VENV)
	$(VENV)/bin/python -m pip install --quiet --disable-pip-version-check uv==$(UV_VERSION)

$(STAMP): uv.lock pyproject.toml | $(UV)
	$(UV) sync --frozen --quiet
	@touch $(STAMP)

demo: $(STAMP)
	$(VENV)/bin/nba demo

test: $(STAMP)
	$(VENV)/bin/ruff check .
	$(VENV)/bin/ruff format --check .
	$(VENV)/bin/mypy
	$(VENV)/bin/python -m pytest

# Everything, including slow tests (calibration at 20,000 members and more).
test-all: $(STAMP)
	$(VENV)/bin/python -m pytest -m ''

lint: $(STAMP)
	$(VENV)/bin/ruff check . && $(VENV)/bin/ruff format --check . && $(VENV)/bin/mypy

clean:
	rm -rf $(VENV) .pytest_cache .mypy_cache .ruff_cache
