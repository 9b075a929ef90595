# The README's two commands (`make demo`, `make test`) and the developer loop.
PYTHON ?= python3
VENV   ?= .venv
BIN    := $(VENV)/bin

.PHONY: demo test lint typecheck unit docs bench clean browser

$(BIN)/python:
	$(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install --quiet --upgrade pip

$(VENV)/.demo-installed: pyproject.toml | $(BIN)/python
	$(BIN)/python -m pip install --quiet -e ".[demo]"
	touch $@

EXPORTERS := exporters/aws exporters/otlp exporters/gcp exporters/azure

$(VENV)/.dev-installed: pyproject.toml $(EXPORTERS:%=%/pyproject.toml) | $(BIN)/python
	$(BIN)/python -m pip install --quiet -e ".[dev]" $(EXPORTERS:%=-e %)
	touch $@ $(VENV)/.demo-installed

## the main job: a real model served for a simulated day, then its report
demo: $(VENV)/.demo-installed
	$(BIN)/obs demo

## everything CI runs: lint, types, the whole test suite, the documentation site
test: $(VENV)/.dev-installed lint typecheck unit docs

lint: $(VENV)/.dev-installed
	$(BIN)/ruff check .
	$(BIN)/ruff format --check .

typecheck: $(VENV)/.dev-installed
	$(BIN)/mypy

unit: $(VENV)/.dev-installed browser
	$(BIN)/pytest

## the headless browser tests/test_cost_html.py renders the HTML report in:
## Debian's chromium, installed when missing and we are root (CI is)
browser:
	@command -v chromium >/dev/null || command -v chromium-browser >/dev/null || \
	command -v google-chrome >/dev/null || \
	if [ "$$(id -u)" = 0 ] && command -v apt-get >/dev/null; then \
		apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq chromium; \
	else \
		echo "make browser: no chromium, and no apt-get as root to install it" >&2; \
	fi

docs: $(VENV)/.dev-installed
	NO_MKDOCS_2_WARNING=1 $(BIN)/mkdocs build --strict --quiet --site-dir site

## budgets: cold-start tax and warm overhead against Powertools (docs/benchmarks.md)
bench: $(VENV)/.dev-installed
	$(BIN)/python bench/run.py

clean:
	rm -rf $(VENV) bench/.venv-* .mypy_cache .ruff_cache .pytest_cache .hypothesis
