# Set-up and everyday commands. Needs only Python 3.11+ and make; everything else goes in .venv.
comma := ,
PYTHON ?= python3
VENV ?= .venv
BIN := $(VENV)/bin
EXTRAS ?= dev,aws,lambda,notebooks
INSTALLED := $(VENV)/.installed-$(subst $(comma),-,$(EXTRAS))
PIP_FLAGS ?= --quiet --disable-pip-version-check
LAKE ?= data/lake

.PHONY: demo test lab notebook-filter package lint bench clean-lake help

help:
	@echo "make demo     - create .venv, install, run the whole pipeline offline into ./$(LAKE)"
	@echo "make test     - create/update .venv, run the tests"
	@echo "make lab      - JupyterLab on the notebooks, against the demo lake"
	@echo "make notebook-filter - keep notebook outputs out of git (lab and test run it)"
	@echo "make package  - build the extract/transform Lambda zips and check their size"
	@echo "make lint     - ruff, and the layers contract (import-linter)"
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

test: $(INSTALLED) notebook-filter
	$(BIN)/python -m pytest

$(LAKE)/iceberg_catalog.db: | $(INSTALLED)
	$(BIN)/spotify-etl demo --lake $(LAKE)

# An s3:// lake is used as it is; a local one is made by the demo when missing.
REMOTE_LAKE := $(findstring ://,$(LAKE))
lab: $(INSTALLED) notebook-filter $(if $(REMOTE_LAKE),,$(LAKE)/iceberg_catalog.db)
	SPOTIFY_ETL_LAKE=$(if $(REMOTE_LAKE),$(LAKE),$(abspath $(LAKE))) \
	  $(BIN)/jupyter lab --notebook-dir=notebooks --allow-root

# JupyterLab saves outputs into the notebooks; .gitattributes sends them through this filter,
# so git stores them without outputs (and without the kernel's version details), and
# `git diff` compares them so too. Where the filter is not configured, git stores notebooks
# as they are, and tests/test_notebooks.py says to run this.
NBSTRIPOUT := "$(abspath $(BIN))/python" -m nbstripout
VOLATILE_NOTEBOOK_KEYS := $(addprefix metadata.language_info.,\
  codemirror_mode file_extension mimetype nbconvert_exporter pygments_lexer version)
notebook-filter: $(INSTALLED)
	@if git rev-parse --is-inside-work-tree >/dev/null 2>&1; then \
	  git config filter.nbstripout.clean '$(NBSTRIPOUT)' && \
	  git config filter.nbstripout.smudge cat && \
	  git config filter.nbstripout.extrakeys '$(VOLATILE_NOTEBOOK_KEYS)' && \
	  git config diff.ipynb.textconv '$(NBSTRIPOUT) -t'; \
	fi

package: $(INSTALLED)
	$(BIN)/python lambdas/package.py --out build/lambda

lint: $(INSTALLED)
	$(BIN)/ruff check etl_lib lambdas tests bench infra
	$(BIN)/lint-imports

bench: $(INSTALLED)
	$(BIN)/python -m bench

clean-lake:
	rm -rf $(LAKE)
