"""The constraints `make test-minimums` installs with: every direct dependency of the product at
its lower bound (.ci/minimum_versions.py)."""

from __future__ import annotations

import importlib.util
import tomllib
from pathlib import Path

import pytest
from packaging.requirements import Requirement

ROOT = Path(__file__).resolve().parents[1]
SCRIPT = ROOT / ".ci" / "minimum_versions.py"


def load_script():
    spec = importlib.util.spec_from_file_location("minimum_versions", SCRIPT)
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


minimum_versions = load_script()


def project(dependencies, **extras):
    return {"dependencies": dependencies, "optional-dependencies": extras}


def test_the_constraints_pin_every_direct_dependency_of_the_product_to_its_lower_bound(capsys):
    assert minimum_versions.main(["--extras", "aws,lambda,notebooks"]) == 0
    pinned = dict(line.split("==") for line in capsys.readouterr().out.splitlines())
    declared = tomllib.loads((ROOT / "pyproject.toml").read_text())["project"]
    product = declared["dependencies"] + [
        line
        for extra in ("aws", "lambda", "notebooks")
        for line in declared["optional-dependencies"][extra]
    ]
    names = {Requirement(line).name.lower() for line in product}
    assert set(pinned) == names
    # The bounds the code's features need (pyproject.toml says why), not the older ones.
    assert pinned["pyathena"] == "3.12"
    assert pinned["pyarrow"] == "18"
    # Test tools are not the product's: moto and pytest resolve freely.
    assert "moto" not in pinned and "pytest" not in pinned


def test_extras_are_written_without_their_extras_as_pip_constraints_require():
    pins = minimum_versions.minimum_pins(project(["pyiceberg[sql-sqlite]>=0.12,<0.13"]), [])
    assert minimum_versions.constraints_text(pins) == "pyiceberg==0.12\n"


def test_a_dependency_without_a_lower_bound_is_refused_by_name():
    with pytest.raises(minimum_versions.BoundError, match="s3fs has no lower bound"):
        minimum_versions.minimum_pins(project([], aws=["s3fs"]), ["aws"])


def test_two_extras_giving_one_package_different_lower_bounds_are_refused():
    with pytest.raises(minimum_versions.BoundError, match=r"boto3 has lower bound 1.34 in \[aws\]"):
        minimum_versions.minimum_pins(
            project([], aws=["boto3>=1.34"], **{"lambda": ["boto3>=1.35"]}), ["aws", "lambda"]
        )


def test_a_requirement_for_another_platform_is_not_pinned():
    pins = minimum_versions.minimum_pins(
        project(["tqdm>=4.66", "pywin32>=306; sys_platform == 'win32'"]), []
    )
    assert pins == {"tqdm": "4.66"}


def test_the_dev_extra_and_unknown_extras_are_one_line_errors(capsys):
    assert minimum_versions.main(["--extras", "aws,dev"]) == 2
    assert capsys.readouterr().err.strip() == (
        "minimum_versions: the 'dev' extra holds test tools: it is not pinned"
    )
    assert minimum_versions.main(["--extras", "gpu"]) == 2
    assert "unknown extra gpu" in capsys.readouterr().err


def test_an_installed_version_other_than_the_bound_is_named(capsys):
    # pytest is installed at some version; 0.1 is surely not it.
    lines, wrong = minimum_versions.installed_report({"pytest": "0.1", "not-a-package": "1.0"})
    assert wrong == ["not-a-package", "pytest"]
    assert any(line.startswith("not-a-package") and "not installed" in line for line in lines)
