"""Install the Lambda image's Python packages into a folder and check them, without Docker.

    python lambdas/package.py --out build/image [--arch x86_64|arm64] [--python python3.12]

Every function runs from one container image (``lambdas/Dockerfile``). Building it needs a
Docker engine; what goes into it does not. This installs what the Dockerfile's ``pip install``
installs (the project with its ``aws``, ``lambda`` and ``notebooks`` extras) into
``<out>/site`` with pip, for the image's platform (CPython 3.12 on Amazon Linux 2023: glibc
2.34, so manylinux wheels up to 2.34, and wheels only, as the Dockerfile asks), leaves out
what ``.dockerignore`` keeps from the build context (the local Spotify and archive servers),
copies the handlers where the Dockerfile puts them, then imports every handler from that folder
in a bare interpreter of the image's Python (``-S``: no site-packages, so nothing is found
outside the folder) and prints the folder's size against Lambda's 10 GB limit for an image.
pip downloads from PyPI (or its cache), so this takes a minute or two the first time.

A dependency with no wheel for the platform makes pip stop: that names the package, and the
image build would fail the same way.
"""

from __future__ import annotations

import argparse
import glob
import json
import os
import shutil
import subprocess
import sys
import tempfile
import tomllib
from importlib import metadata
from pathlib import Path

from packaging.requirements import Requirement
from packaging.utils import canonicalize_name

ROOT = Path(__file__).resolve().parents[1]
FUNCTIONS = ("extract", "transform", "report", "views")
EXTRAS = "aws,lambda,notebooks"
IMAGE_PYTHON = (3, 12)
IMAGE_GLIBC = (2, 34)  # Amazon Linux 2023, the base of public.ecr.aws/lambda/python:3.12
WHEEL_ARCH = {"x86_64": "x86_64", "arm64": "aarch64"}
MB = 1024 * 1024
# Lambda's limit for a container image: 10 GB uncompressed, base image included.
IMAGE_LIMIT_MB = 10 * 1024
# What .dockerignore keeps out of the build context, so out of the installed package too.
LEFT_OUT = ("etl_lib/local_spotify",)

IMPORT_HANDLERS = """
import importlib, json, sys, time
site = sys.argv[1]
sys.path.insert(0, site)
loaded = {}
for function in sys.argv[2:]:
    started = time.perf_counter()
    importlib.import_module(f"lambdas.{function}.app")
    loaded[function] = round(time.perf_counter() - started, 2)
# What the report's notebooks import once a report runs.
import papermill, nbclient, ipykernel, matplotlib, pyathena, duckdb, pyarrow, pyiceberg
outside = sorted(
    name for name, module in sys.modules.items()
    if getattr(module, "__file__", None) and "site-packages" in module.__file__
)
print(json.dumps({"seconds": loaded, "outside": outside}))
"""


def image_python(explicit: str | None) -> str | None:
    """An interpreter of the image's Python version: the one given, else python3.12 on the
    PATH or from pyenv's versions (not pyenv's shim, which fails unless 3.12 is selected)."""
    if explicit:
        return explicit if Path(explicit).is_file() else None
    version = ".".join(map(str, IMAGE_PYTHON))
    on_path = shutil.which(f"python{version}")
    candidates = [on_path] if on_path and "/shims/" not in on_path else []
    pyenv = Path(os.environ.get("PYENV_ROOT", Path.home() / ".pyenv")) / "versions"
    candidates += sorted(glob.glob(str(pyenv / f"{version}.*" / "bin" / f"python{version}")))
    return next((c for c in candidates if Path(c).is_file()), None)


def platform_tags(arch: str) -> list[str]:
    """Every manylinux tag a wheel may carry to load on the image's glibc: pip does not expand
    a ``--platform manylinux_2_34`` to the older glibc versions it covers, so each is named."""
    machine = WHEEL_ARCH[arch]
    major, newest = IMAGE_GLIBC
    tags = [f"manylinux_{major}_{minor}_{machine}" for minor in range(newest, 4, -1)]
    legacy = {"manylinux2014": 17, "manylinux2010": 12, "manylinux1": 5}
    return tags + [f"{name}_{machine}" for name, minor in legacy.items() if minor <= newest]


def image_distributions() -> dict[str, str]:
    """Name -> version of every distribution the image installs: the project's dependencies
    with the image's extras, and theirs, as installed here (the releases the tests ran)."""
    project = tomllib.loads((ROOT / "pyproject.toml").read_text(encoding="utf-8"))["project"]
    wanted = project["dependencies"] + [
        requirement
        for extra in EXTRAS.split(",")
        for requirement in project["optional-dependencies"][extra]
    ]
    found: dict[str, str] = {}
    pending = [Requirement(text) for text in wanted]
    while pending:
        requirement = pending.pop()
        name = canonicalize_name(requirement.name)
        if name in found:
            continue
        # The markers of the image's Python, not this one's.
        environment = {"extra": "", "python_version": ".".join(map(str, IMAGE_PYTHON))}
        if requirement.marker and not requirement.marker.evaluate(environment):
            continue
        try:
            dist = metadata.distribution(name)
        except metadata.PackageNotFoundError:
            raise SystemExit(
                f"error: {name} is not installed in {sys.prefix}: "
                f"pip install -e '.[{EXTRAS}]' first"
            ) from None
        found[name] = dist.version
        pending += [
            dependency
            for text in dist.requires or []
            if not (dependency := Requirement(text)).marker
            or dependency.marker.evaluate(environment | {"extra": ""})
            or any(
                dependency.marker.evaluate(environment | {"extra": extra})
                for extra in requirement.extras
            )
        ]
    return dict(sorted(found.items()))


def pip_install(site: Path, arch: str, pins: dict[str, str]) -> None:
    """pip install the project's wheel and each pinned release into ``site``, for the image's
    platform, wheels only. The pins make pip resolve nothing: it fetches the image platform's
    wheel of each release installed here."""
    with tempfile.TemporaryDirectory() as wheels:
        subprocess.run(
            [sys.executable, "-m", "pip", "wheel", "--quiet", "--no-deps", "-w", wheels, str(ROOT)],
            check=True,
        )
        [wheel] = Path(wheels).glob("*.whl")
        platforms = [option for tag in platform_tags(arch) for option in ("--platform", tag)]
        subprocess.run(
            [
                sys.executable,
                "-m",
                "pip",
                "install",
                "--quiet",
                "--disable-pip-version-check",
                "--target",
                str(site),
                *platforms,
                "--python-version",
                "".join(map(str, IMAGE_PYTHON)),
                "--implementation",
                "cp",
                "--only-binary=:all:",
                "--no-compile",
                "--no-deps",
                str(wheel),
                *(
                    f"{name}=={version}"
                    for name, version in pins.items()
                    if name != "spotify-charts-lake"
                ),
            ],
            check=True,
        )


def copy_handlers(site: Path) -> None:
    for function in FUNCTIONS:
        target = site / "lambdas" / function
        target.mkdir(parents=True, exist_ok=True)
        shutil.copyfile(ROOT / "lambdas" / function / "app.py", target / "app.py")


def folder_mb(folder: Path) -> float:
    return sum(p.stat().st_size for p in folder.rglob("*") if p.is_file()) / MB


def import_handlers(python: str, site: Path) -> dict:
    result = subprocess.run(
        [python, "-S", "-c", IMPORT_HANDLERS, str(site), *FUNCTIONS],
        capture_output=True,
        text=True,
        timeout=300,
        env={**os.environ, "AWS_DEFAULT_REGION": os.environ.get("AWS_DEFAULT_REGION", "us-east-1")},
    )
    if result.returncode != 0:
        last = (result.stderr.strip().splitlines() or ["no output"])[-1]
        raise SystemExit(f"error: a handler does not import from {site}: {last}")
    return json.loads(result.stdout.splitlines()[-1])


def parse_args(argv: list[str] | None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--out", type=Path, default=ROOT / "build" / "image")
    parser.add_argument("--arch", choices=sorted(WHEEL_ARCH), default="x86_64")
    parser.add_argument(
        "--python", help="a Python 3.12 to import the handlers with (default: python3.12)"
    )
    parser.add_argument("--max-mb", type=float, default=IMAGE_LIMIT_MB)
    return parser.parse_args(argv)


def main(argv: list[str] | None = None) -> int:
    args = parse_args(argv)
    version = ".".join(map(str, IMAGE_PYTHON))
    python = image_python(args.python)
    if python is None:
        print(
            f"error: no Python {version} found to import the handlers with (the image's "
            f"Python): install it or pass --python",
            file=sys.stderr,
        )
        return 1
    site = args.out / "site"
    if site.exists():
        shutil.rmtree(site)
    pins = image_distributions()
    try:
        pip_install(site, args.arch, pins)
    except subprocess.CalledProcessError:
        print(
            f"error: pip could not install the image's packages for Python {version} on "
            f"manylinux {IMAGE_GLIBC[0]}.{IMAGE_GLIBC[1]} {args.arch} (see pip's message above)",
            file=sys.stderr,
        )
        return 1
    for left_out in LEFT_OUT:
        shutil.rmtree(site / left_out, ignore_errors=True)
    copy_handlers(site)
    size_mb = folder_mb(site)
    imported = import_handlers(python, site) if args.arch == "x86_64" else None
    print(
        f"installed: {site}: {len(pins)} distributions at the versions installed here, "
        f"their wheels for Python {version}, manylinux {IMAGE_GLIBC[0]}.{IMAGE_GLIBC[1]} "
        f"{args.arch}"
    )
    if imported is None:
        print(f"not imported: {args.arch} packages do not load on this machine")
    else:
        seconds = ", ".join(f"{name} {s:.2f} s" for name, s in imported["seconds"].items())
        print(f"handlers import from it with {python} -S: {seconds}")
        if imported["outside"]:
            print(f"error: loaded from outside {site}: {imported['outside']}", file=sys.stderr)
            return 1
    print(
        f"size: {size_mb:.0f} MB of Python packages (limit {args.max_mb:g} MB for the whole "
        "image, its base included)"
    )
    if size_mb > args.max_mb:
        print(f"error: {size_mb:.0f} MB is over the {args.max_mb:g} MB limit", file=sys.stderr)
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main())
