# Set-up and everyday commands. Needs only Python 3.11+ and make; everything else goes in .venv.
comma := ,
PYTHON ?= python3
VENV ?= .venv
BIN := $(VENV)/bin
EXTRAS ?= dev,aws,lambda,notebooks
INSTALLED := $(VENV)/.installed-$(subst $(comma),-,$(EXTRAS))
PIP_FLAGS ?= --quiet --disable-pip-version-check
LAKE ?= data/lake

.PHONY: demo test lab package lint bench clean-lake help

help:
	@echo "make demo     - create .venv, install, run the whole pipeline offline into ./$(LAKE)"
	@echo "make test     - create/update .venv, run the tests"
	@echo "make lab      - JupyterLab on the notebooks, against the demo lake"
	@echo "make package  - build the extract/transform Lambda zips and check their size"
	@echo "make lint     - ruff"
	@echo "make bench    - benchmark on a generated year of hourly snapshots (about 8 minutes)"

$(BIN)/python:
	@$(PYTHON) -c 'import sys; sys.exit(0 if sys.version_info >= (3, 11) else "Python 3.11+ is needed; found " + sys.version.split()[0] + " (set PYTHON=python3.11)")'
	$(PYTHON) -m venv $(VENV)

$(INSTALLED): pyproject.toml | $(BIN)/python
	$(BIN)/python -m pip install $(PIP_FLAGS) --upgrade pip
	$(BIN)/python -m pip install $(PIP_FLAGS) -e ".[$(EXTRAS)]"
	@touch $@

demo: $(INSTALLED)
	$(BIN)/spotify-etl demo --lake $(LAKE)

test: $(INSTALLED)
	$(BIN)/python -m pytest

$(LAKE)/iceberg_catalog.db: | $(INSTALLED)
	$(BIN)/spotify-etl demo --lake $(LAKE)

lab: $(INSTALLED) $(LAKE)/iceberg_catalog.db
	SPOTIFY_ETL_LAKE=$(abspath $(LAKE)) $(BIN)/jupyter lab --notebook-dir=notebooks --allow-root

package: $(INSTALLED)
	$(BIN)/python lambda/package.py --out build/lambda

lint: $(INSTALLED)
	$(BIN)/ruff check etl_lib lambda tests bench infra

bench: $(INSTALLED)
	$(BIN)/python -m bench

clean-lake:
	rm -rf $(LAKE)
