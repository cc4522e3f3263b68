"""The set-up files agree with each other: one source of dependencies, extras that exist."""

from __future__ import annotations

import fnmatch
import importlib
import re
import tomllib
from pathlib import Path

import yaml

ROOT = Path(__file__).resolve().parents[1]


def test_environment_yml_names_only_existing_extras():
    extras = set(tomllib.loads((ROOT / "pyproject.toml").read_text())["project"][
        "optional-dependencies"
    ])
    environment = yaml.safe_load((ROOT / "environment.yml").read_text())
    pip_lines = next(d["pip"] for d in environment["dependencies"] if isinstance(d, dict))
    named = set()
    for line in pip_lines:
        match = re.fullmatch(r"-e \.\[(?P<extras>[a-z,_-]+)\]", line)
        assert match, f"environment.yml should only install the project, not {line!r}"
        named |= set(match["extras"].split(","))
    assert named and named <= extras, named - extras


def test_ci_runs_the_readme_test_command():
    assert "make test" in (ROOT / ".ci" / "run").read_text()
    readme = (ROOT / "README.md").read_text()
    assert "make demo" in readme and "make test" in readme


def _lambda_package():
    return importlib.import_module("lambdas.package")


def test_lambda_zips_bundle_pyiceberg_for_glue_without_its_sql_catalog_or_cli():
    package = _lambda_package()
    bundled = {dist.metadata["Name"].lower() for dist in package.distributions_to_bundle()}
    # What pyiceberg imports to write a table through the Glue catalog.
    assert {"pyiceberg", "pydantic", "pyroaring", "zstandard", "mmh3", "boto3"} <= bundled
    # Its SQL catalog (an extra) and its command line are never imported on Lambda.
    assert not bundled & {"sqlalchemy", "rich", "pygments", "click", "markdown-it-py"}


def test_every_file_left_out_of_the_zips_names_a_bundled_file():
    package = _lambda_package()
    dists = package.distributions_to_bundle()
    installed = [path.as_posix() for dist in dists for path in dist.files or []]
    installed += [p.relative_to(ROOT).as_posix() for p in (ROOT / "etl_lib").rglob("*")]
    zipped = package.bundle_files(dists)
    for pattern in package.LEFT_OUT_FILES:
        # Still installed (else the pattern leaves out nothing), and not in the zips.
        assert [name for name in installed if fnmatch.fnmatchcase(name, pattern)], pattern
        assert not [name for name in zipped if fnmatch.fnmatchcase(name, pattern)], pattern


def test_lambda_zips_hold_etl_lib_without_the_local_servers_or_the_notebooks():
    package = _lambda_package()
    zipped = package.bundle_files(package.distributions_to_bundle())
    ours = [name for name in zipped if name.startswith("etl_lib/")]
    assert {"etl_lib/__init__.py", "etl_lib/pipeline.py", "etl_lib/lake/layout.py"} <= set(ours)
    assert [name for name in ours if name.startswith("etl_lib/warehouse/sql/")]
    assert not [name for name in ours if name.startswith("etl_lib/local_spotify/")]
    assert not [name for name in ours if name.endswith(".ipynb")]
