# dockline: `make demo` runs the pipeline on sample files, `make test` runs every check.
# Each target sets up what it needs on first use (.venv, and .venv-checkov for the linter).
PYTHON ?= python3
VENV ?= .venv
CHECKOV_VENV ?= .venv-checkov
BIN := $(VENV)/bin
export JSII_SILENCE_WARNING_END_OF_LIFE_NODE_VERSION := 20
export PIP_DISABLE_PIP_VERSION_CHECK := 1

.PHONY: demo test lint typecheck unit bench bench-big setup clean browser

setup: $(VENV)/.installed

$(VENV)/.installed: pyproject.toml
	$(PYTHON) -m venv $(VENV)
	$(BIN)/pip install -q -e '.[dev]'
	touch $@

$(CHECKOV_VENV)/.installed:
	$(PYTHON) -m venv $(CHECKOV_VENV)
	$(CHECKOV_VENV)/bin/pip install -q 'checkov>=3.2,<4'
	touch $@

demo: $(VENV)/.installed
	$(BIN)/dockline demo

lint: $(VENV)/.installed
	$(BIN)/ruff check src tests bench

typecheck: $(VENV)/.installed
	$(BIN)/mypy

# The console's browser test drives Debian's chromium through its chromedriver (Selenium
# cannot download a driver offline). Installed only when missing; CI runs as root.
browser:
	@test -x /usr/bin/chromedriver || { apt-get update -q && DEBIAN_FRONTEND=noninteractive apt-get install -y -q chromium chromium-driver; }

unit: $(VENV)/.installed $(CHECKOV_VENV)/.installed browser
	CHECKOV_BIN=$(CURDIR)/$(CHECKOV_VENV)/bin/checkov $(BIN)/pytest -n 2 -q -p no:cacheprovider

test: lint typecheck unit

bench: $(VENV)/.installed
	$(BIN)/python bench/run.py

bench-big: $(VENV)/.installed
	$(BIN)/python bench/run.py --only big

clean:
	rm -rf $(VENV) $(CHECKOV_VENV) cdk.out .pytest_cache .mypy_cache .ruff_cache
