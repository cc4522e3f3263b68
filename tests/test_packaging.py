"""The set-up files agree with each other: one source of dependencies, extras that exist."""

from __future__ import annotations

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
