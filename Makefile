# Set-up and everyday commands. Needs only Python 3.11+ and make; everything else goes in .venv.
PYTHON ?= python3
VENV ?= .venv
BIN := $(VENV)/bin
EXTRAS ?= dev,aws
INSTALLED := $(VENV)/.installed-$(EXTRAS)
PIP_FLAGS ?= --quiet --disable-pip-version-check

.PHONY: demo test lint clean-lake help

help:
	@echo "make demo   - create .venv, install, run the whole pipeline offline into ./data/lake"
	@echo "make test   - create/update .venv, run the tests"
	@echo "make lint   - ruff"

$(BIN)/python:
	@$(PYTHON) -c 'import sys; sys.exit(0 if sys.version_info >= (3, 11) else "Python 3.11+ is needed; found " + sys.version.split()[0] + " (set PYTHON=python3.11)")'
	$(PYTHON) -m venv $(VENV)

$(INSTALLED): pyproject.toml | $(BIN)/python
	$(BIN)/python -m pip install $(PIP_FLAGS) --upgrade pip
	$(BIN)/python -m pip install $(PIP_FLAGS) -e ".[$(EXTRAS)]"
	@touch $@

demo: $(INSTALLED)
	$(BIN)/spotify-etl demo

test: $(INSTALLED)
	$(BIN)/python -m pytest

lint: $(INSTALLED)
	$(BIN)/ruff check etl_lib tests

clean-lake:
	rm -rf data/lake
