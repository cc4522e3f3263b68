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


def test_the_image_leaves_out_what_the_build_context_leaves_out():
    """lambdas/package.py removes from its folder what .dockerignore keeps out of the image's
    build context: the local Spotify and archive servers."""
    package = importlib.import_module("lambdas.package")
    ignored = {
        line.strip()
        for line in (ROOT / ".dockerignore").read_text(encoding="utf-8").splitlines()
        if line.strip() and not line.startswith("#")
    }
    etl_lib_ignored = {pattern for pattern in ignored if pattern.startswith("etl_lib/")}
    assert etl_lib_ignored == set(package.LEFT_OUT)
    for left_out in package.LEFT_OUT:
        assert (ROOT / left_out).is_dir(), left_out  # still there to leave out
    assert not [p for p in ignored if fnmatch.fnmatchcase("etl_lib/reporting/notebooks", p)]
