"""Pip constraints that pin the product's direct dependencies to their declared lower bounds.

`make test-minimums` installs the package with these constraints into a separate venv and runs
the AWS tests there, so a lower bound in pyproject.toml is a version the code has run on, not a
guess. Only the direct dependencies are pinned; what they need resolves freely, as it would for a
user who installs the oldest release we allow.

    python .ci/minimum_versions.py --extras aws,lambda,notebooks > constraints.txt
    python .ci/minimum_versions.py --extras aws,lambda,notebooks --check-installed

The dev extra is never pinned: pytest, moto, cfn-lint and the other tools test the product, and
their lower bounds promise users nothing. (A package that is both a tool's and the product's,
boto3, is pinned through the product's extra that names it.)
"""

from __future__ import annotations

import argparse
import sys
import tomllib
from importlib import metadata
from pathlib import Path

from packaging.markers import default_environment
from packaging.requirements import InvalidRequirement, Requirement
from packaging.utils import canonicalize_name
from packaging.version import Version

PYPROJECT = Path(__file__).resolve().parent.parent / "pyproject.toml"
# The extra whose packages test the product rather than make it up.
TOOLS_EXTRA = "dev"


class BoundError(Exception):
    """A dependency the constraints cannot pin; the message says which and why."""


def lower_bound(requirement: Requirement) -> str:
    """The oldest version the requirement admits, from its `>=`, `==` or `~=` clause."""
    bounds = [spec.version for spec in requirement.specifier if spec.operator in (">=", "==", "~=")]
    if not bounds:
        raise BoundError(
            f"{requirement.name} has no lower bound in pyproject.toml ({requirement}): "
            "give it a `>=` with the oldest release the code works with"
        )
    if len(bounds) > 1:
        raise BoundError(f"{requirement.name} has more than one lower bound: {requirement}")
    return bounds[0]


def minimum_pins(project: dict, extras: list[str]) -> dict[str, str]:
    """Package name -> its lower bound, for the base dependencies and the given extras.

    A package named by several extras must give the same lower bound in each: otherwise one
    extra's bound is not the oldest version the product runs on.
    """
    optional = project.get("optional-dependencies", {})
    unknown = [extra for extra in extras if extra not in optional]
    if unknown:
        raise BoundError(
            f"unknown extra {', '.join(unknown)}: pyproject.toml has {', '.join(sorted(optional))}"
        )
    if TOOLS_EXTRA in extras:
        raise BoundError(f"the {TOOLS_EXTRA!r} extra holds test tools: it is not pinned")
    environment = default_environment()
    pins: dict[str, str] = {}
    sources: dict[str, str] = {}
    lines = [("dependencies", line) for line in project.get("dependencies", [])]
    lines += [(f"[{extra}]", line) for extra in extras for line in optional[extra]]
    for where, line in lines:
        try:
            requirement = Requirement(line)
        except InvalidRequirement as exc:
            raise BoundError(f"pyproject.toml {where}: {exc}") from exc
        if requirement.marker is not None and not requirement.marker.evaluate(environment):
            continue
        name = canonicalize_name(requirement.name)
        version = lower_bound(requirement)
        if name in pins and pins[name] != version:
            raise BoundError(
                f"{name} has lower bound {pins[name]} in {sources[name]} "
                f"and {version} in {where}: make them the same"
            )
        pins[name] = version
        sources[name] = where
    return pins


def constraints_text(pins: dict[str, str]) -> str:
    # Constraints files take no extras: `pyiceberg==0.12`, not `pyiceberg[sql-sqlite]==0.12`.
    return "".join(f"{name}=={version}\n" for name, version in sorted(pins.items()))


def installed_report(pins: dict[str, str]) -> tuple[list[str], list[str]]:
    """One line per pinned package with the version this interpreter has, and the packages whose
    installed version is not their lower bound (the constraints did not take)."""
    lines, wrong = [], []
    for name, version in sorted(pins.items()):
        try:
            installed = metadata.version(name)
        except metadata.PackageNotFoundError:
            installed = "not installed"
        lines.append(f"{name:<24} minimum {version:<10} installed {installed}")
        if installed == "not installed" or Version(installed) != Version(version):
            wrong.append(name)
    return lines, wrong


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument(
        "--extras",
        default="aws,lambda,notebooks",
        help="comma-separated extras whose dependencies are pinned besides the base ones",
    )
    parser.add_argument("--pyproject", type=Path, default=PYPROJECT)
    parser.add_argument(
        "--check-installed",
        action="store_true",
        help="instead of constraints, list the installed versions of the pinned packages, "
        "failing if one is not its lower bound",
    )
    args = parser.parse_args(argv)
    extras = [extra.strip() for extra in args.extras.split(",") if extra.strip()]
    try:
        project = tomllib.loads(args.pyproject.read_text(encoding="utf-8"))["project"]
        pins = minimum_pins(project, extras)
    except (OSError, KeyError, tomllib.TOMLDecodeError, BoundError) as exc:
        print(f"minimum_versions: {exc}", file=sys.stderr)
        return 2
    if not args.check_installed:
        sys.stdout.write(constraints_text(pins))
        return 0
    lines, wrong = installed_report(pins)
    print("\n".join(lines))
    if wrong:
        print(
            f"minimum_versions: not installed at their lower bound: {', '.join(wrong)} "
            "(install with -c the constraints this script writes)",
            file=sys.stderr,
        )
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main())
