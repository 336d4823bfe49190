# photokit developer entry points. Each target creates .venv on first use and installs into it.
PYTHON ?= python3.11
VENV   := .venv
PY     := $(VENV)/bin/python
STAMP  := $(VENV)/.installed

.PHONY: demo test lint bench screenshots venv clean

venv: $(STAMP)

$(STAMP): pyproject.toml
	@command -v $(PYTHON) >/dev/null 2>&1 || { echo "photokit needs $(PYTHON) (Python >= 3.11) on PATH" >&2; exit 2; }
	$(PYTHON) -m venv $(VENV)
	$(PY) -m pip install --quiet --upgrade pip
	$(PY) -m pip install --quiet -e ".[test,heic,demo,web]"
	@touch $(STAMP)

demo: $(STAMP)
	$(PY) -m photokit.demo

# Lint first: formatting, lint rules and types are checked before the suite runs.
lint: $(STAMP)
	$(VENV)/bin/ruff format --check .
	$(VENV)/bin/ruff check .
	$(VENV)/bin/mypy

# Every test on SQLite, then the database-touching ones (marker `db`) again on a throwaway PostgreSQL server.
test: $(STAMP) lint
	$(PY) -m pytest -q
	PHOTOKIT_TEST_DB=postgres $(PY) -m pytest -q -m db

bench: $(STAMP)
	$(PY) -m benchmarks.run_all

# The gallery screenshots (docs/web-*.png, not committed) from a synthetic library, in headless Chromium.
screenshots: $(STAMP)
	PYTHONPATH=. $(PY) docs/make_screenshots.py

clean:
	rm -rf $(VENV) .pytest_cache build *.egg-info
