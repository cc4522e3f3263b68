# Set-up and everyday commands. Needs only Python 3.11+ and make; everything else goes in .venv.
comma := ,
PYTHON ?= python3
VENV ?= .venv
BIN := $(VENV)/bin
EXTRAS ?= dev,aws,lambda,notebooks
INSTALLED := $(VENV)/.installed-$(subst $(comma),-,$(EXTRAS))
PIP_FLAGS ?= --quiet --disable-pip-version-check
LAKE ?= data/lake

.PHONY: demo test test-minimums lab notebook-filter package lint bench cost clean-lake help

help:
	@echo "make demo     - create .venv, install, run the whole pipeline offline into ./$(LAKE)"
	@echo "make test     - create/update .venv, run the tests"
	@echo "make test-minimums - the AWS tests on the oldest dependency versions pyproject.toml allows"
	@echo "make lab      - JupyterLab on the notebooks, against the demo lake"
	@echo "make notebook-filter - keep notebook outputs out of git (lab and test run it)"
	@echo "make package  - install the Lambda image's packages into build/image, import each handler"
	@echo "make lint     - ruff, and the layers contract (import-linter)"
	@echo "make bench    - benchmark on a generated year of hourly snapshots (about 8 minutes)"
	@echo "make cost     - the monthly AWS bill for 1 and 73 charts, simulated on moto (about 12 minutes)"

$(BIN)/python:
	@$(PYTHON) -c 'import sys; sys.exit(0 if sys.version_info >= (3, 11) else "Python 3.11+ is needed; found " + sys.version.split()[0] + " (set PYTHON=python3.11)")'
	$(PYTHON) -m venv $(VENV)

$(INSTALLED): pyproject.toml | $(BIN)/python
	$(BIN)/python -m pip install $(PIP_FLAGS) --upgrade pip
	$(BIN)/python -m pip install $(PIP_FLAGS) -e ".[$(EXTRAS)]"
	@touch $@

demo: $(INSTALLED)
	$(BIN)/spotify-etl demo --lake $(LAKE)

# The tests run in one process per core (pytest-xdist); PYTEST_WORKERS=0 runs them in this one.
PYTEST_WORKERS ?= auto
test: $(INSTALLED) notebook-filter
	$(BIN)/python -m pytest -n $(PYTEST_WORKERS)

# The lower bounds in pyproject.toml, proven: a separate venv gets every direct dependency of the
# product (base and MINIMUM_EXTRAS) at exactly its lower bound, the test tools (dev) at whatever
# resolves, and runs the tests marked aws (moto's S3, Glue, Athena and SSM, pyathena,
# s3fs, pyiceberg's Glue catalog, the Lambda handlers).
MINIMUM_VENV ?= .venv-minimums
MINIMUM_EXTRAS ?= aws,lambda,notebooks
MINIMUM_CONSTRAINTS := $(MINIMUM_VENV)/minimum-versions.txt
test-minimums:
	@$(PYTHON) -c 'import sys; sys.exit(0 if sys.version_info >= (3, 11) else "Python 3.11+ is needed; found " + sys.version.split()[0] + " (set PYTHON=python3.11)")'
	test -x $(MINIMUM_VENV)/bin/python || $(PYTHON) -m venv $(MINIMUM_VENV)
	$(MINIMUM_VENV)/bin/python -m pip install $(PIP_FLAGS) --upgrade pip packaging
	$(MINIMUM_VENV)/bin/python .ci/minimum_versions.py --extras $(MINIMUM_EXTRAS) > $(MINIMUM_CONSTRAINTS)
	@# The script's own packaging must not decide which release the project's requirements get.
	$(MINIMUM_VENV)/bin/python -m pip uninstall $(PIP_FLAGS) --yes packaging
	$(MINIMUM_VENV)/bin/python -m pip install $(PIP_FLAGS) -c $(MINIMUM_CONSTRAINTS) \
	  -e ".[dev,$(MINIMUM_EXTRAS)]"
	$(MINIMUM_VENV)/bin/python .ci/minimum_versions.py --extras $(MINIMUM_EXTRAS) --check-installed
	@# Left to make test: the image, which installs today's releases for its Python 3.12
	@# (lambdas/package.py pins what is installed, here the oldest, some without a 3.12 wheel),
	@# and the cost simulation, tooling that measures with today's DuckDB (bench/queries.py).
	$(MINIMUM_VENV)/bin/python -m pytest -n $(PYTEST_WORKERS) -m aws -p no:cacheprovider --ignore=tests/test_cost.py \
	  --deselect tests/test_lambda_handlers.py::test_the_image_packages_install_and_the_handlers_run_from_them

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
	$(BIN)/python lambdas/package.py --out build/image

lint: $(INSTALLED)
	$(BIN)/ruff check etl_lib lambdas tests bench infra
	$(BIN)/lint-imports

bench: $(INSTALLED)
	$(BIN)/python -m bench

# Two simulated days (day 1, then the steady state scaled to 30), of each day the first check
# and two quiet ones: COST_ARGS="--days 30 --hours 24" simulates the whole month, hour by hour.
COST_ARGS ?= --days 2 --hours 3
cost: $(INSTALLED)
	$(BIN)/python -m bench.cost $(COST_ARGS) --readme README.md

clean-lake:
	rm -rf $(LAKE)
