"""Build the extract and transform Lambda zips and check them against Lambda's size limits.

    python lambdas/package.py --out build/lambda

Each zip holds the function's ``app.py`` at its root, the ``etl_lib`` package, and the
runtime dependencies the handlers import, copied from the distributions installed in the
Python running this script (found with ``importlib.metadata``). Nothing is downloaded, so the
build is quick and offline, and the zip holds the very versions the tests ran against. That
is only right when this Python matches the Lambda runtime, so it is checked: CPython 3.11,
and every compiled wheel built for manylinux on glibc <= 2.26 (Amazon Linux 2, the python3.11
runtime's OS) and the target architecture. Build elsewhere (macOS, Windows) and this stops
with the names of the wheels that would not load.

Left out of the zips (``LEFT_OUT``): what the managed "AWS SDK for pandas" layer ships and
the handlers need (pandas, numpy, pyarrow), the project's query/CLI dependencies that the
extract and transform code never imports (duckdb alone would take 70 MB), and pyiceberg's
command-line dependencies (rich, pygments, click). pyiceberg's SQL catalog (SQLAlchemy,
29 MB) is an extra the zips do not install: on S3 the tables are cataloged in Glue. Files
no import reaches are left out too (``LEFT_OUT_FILES``), etl_lib's own among them: the local
Spotify and archive servers (demo and tests only) and the report notebooks (the report
function is an image that installs them). Bundled
although AWS has a copy: boto3/botocore/s3transfer are in the Lambda runtime (the layer
removes them from its own build), but s3fs's aiobotocore pins a narrow botocore range the
runtime's copy will not match; ``/var/task`` comes first on ``sys.path``, so the bundled,
matching pair wins. Small packages the layer also ships (requests, aiohttp, dateutil...) are
bundled for the same reason: the tested versions win, whatever the layer's version.

Limits: 50 MB zipped (direct upload) and 250 MB unzipped for the function and its layers
together, so the unzipped budget is 250 MB minus the layer's unzipped size; ``--layer-mb``
assumes 170 MB (AWS SDK for pandas 3.15-3.16.0 layers unzip to about 167 MB). MB here is
MiB, as in Lambda's own limit (262,144,000 bytes).
"""

from __future__ import annotations

import argparse
import fnmatch
import re
import shutil
import sys
import tomllib
import zipfile
from importlib import metadata
from pathlib import Path

from packaging.requirements import Requirement
from packaging.utils import canonicalize_name

ROOT = Path(__file__).resolve().parents[1]
FUNCTIONS = ("extract", "transform")
MB = 1024 * 1024
LAMBDA_PYTHON = (3, 11)
LAMBDA_GLIBC = (2, 26)  # Amazon Linux 2
WHEEL_ARCH = {"x86_64": "x86_64", "arm64": "aarch64"}
# The old manylinux names, as the glibc version they stand for.
LEGACY_MANYLINUX = {"manylinux1": (2, 5), "manylinux2010": (2, 12), "manylinux2014": (2, 17)}
LEFT_OUT = {
    "pandas": "in the AWS SDK for pandas layer",
    "numpy": "in the AWS SDK for pandas layer",
    "pyarrow": "in the AWS SDK for pandas layer",
    "duckdb": "query side only, never imported by the handlers",
    "sqlglot": "query side only, never imported by the handlers",
    "pyathena": "query side only, never imported by the handlers",
    "tqdm": "CLI progress bars only",
    # pyiceberg requires these for its own command line (pyiceberg.cli) only.
    "rich": "pyiceberg's command line only (with pygments and markdown-it-py)",
    "click": "pyiceberg's command line only",
}
# Zip entry patterns of bundled distributions that nothing loads, and why.
LEFT_OUT_FILES = {
    "zstandard/_cffi.*": "zstandard's CFFI backend: CPython loads its C backend (backend_c)",
    "etl_lib/local_spotify/*": "the local Spotify and archive servers: demo and tests only",
    "etl_lib/reporting/notebooks/*": "the report notebooks: run by the report image only",
}
# A fixed timestamp makes the zips byte-for-byte reproducible, so unchanged code is not
# redeployed just because it was rebuilt.
ZIP_DATE = (1980, 1, 1, 0, 0, 0)


def wanted_requirements() -> list[str]:
    """The project's dependencies for an S3 lake on Lambda, from pyproject.toml."""
    project = tomllib.loads((ROOT / "pyproject.toml").read_text(encoding="utf-8"))["project"]
    extras = project["optional-dependencies"]
    return project["dependencies"] + extras["aws"] + extras["lambda"]


def distributions_to_bundle() -> list[metadata.Distribution]:
    """Installed distributions of the wanted requirements and their dependencies, recursively,
    minus LEFT_OUT (whose own dependencies are not followed either)."""
    found: dict[str, metadata.Distribution] = {}
    pending = [Requirement(text) for text in wanted_requirements()]
    while pending:
        requirement = pending.pop()
        name = canonicalize_name(requirement.name)
        if name in found or name in LEFT_OUT:
            continue
        # Markers are evaluated for this interpreter, which is checked to be Lambda's.
        if requirement.marker and not requirement.marker.evaluate({"extra": ""}):
            continue
        try:
            found[name] = metadata.distribution(name)
        except metadata.PackageNotFoundError:
            raise SystemExit(
                f"error: {name} is not installed in {sys.prefix}: "
                "pip install -e '.[aws,lambda]' first"
            ) from None
        pending += [Requirement(text) for text in found[name].requires or []]
    return [found[name] for name in sorted(found)]


def _glibc_of(platform: str, arch: str) -> tuple[int, int] | None:
    match = re.fullmatch(rf"manylinux_(\d+)_(\d+)_{arch}", platform)
    if match:
        return int(match[1]), int(match[2])
    legacy, _, platform_arch = platform.partition("_")
    return LEGACY_MANYLINUX.get(legacy) if platform_arch == arch else None


def runs_on_lambda(tag: str, arch: str) -> bool:
    _python, _abi, platforms = tag.split("-")
    if platforms == "any":
        return True
    return any(
        (glibc := _glibc_of(platform, arch)) is not None and glibc <= LAMBDA_GLIBC
        for platform in platforms.split(".")
    )


def platform_problem(dist: metadata.Distribution, arch: str) -> str | None:
    """Why this installed distribution would not load on Lambda, or None."""
    wheel = dist.read_text("WHEEL") or ""
    tags = [line.split(":", 1)[1].strip() for line in wheel.splitlines() if line.startswith("Tag:")]
    if not tags:  # installed from an sdist: fine unless it compiled something for this host
        compiled = any(str(path).endswith((".so", ".pyd")) for path in dist.files or [])
        return f"{dist.name} (built here from source)" if compiled else None
    if any(runs_on_lambda(tag, WHEEL_ARCH[arch]) for tag in tags):
        return None
    return f"{dist.name} {dist.version} ({', '.join(tags)})"


def bundle_files(dists: list[metadata.Distribution]) -> dict[str, Path]:
    """Zip entry name -> file on disk: every distribution's files, then etl_lib's, minus
    LEFT_OUT_FILES."""
    files: dict[str, Path] = {}
    for dist in dists:
        for path in dist.files or []:
            # Scripts land outside site-packages ("../../../bin"); caches are rebuilt.
            if path.parts[0] == ".." or "__pycache__" in path.parts or path.suffix == ".pyc":
                continue
            files[path.as_posix()] = Path(dist.locate_file(path))
    package = ROOT / "etl_lib"
    for path in sorted(package.rglob("*")):
        if path.is_file() and "__pycache__" not in path.parts and path.suffix != ".pyc":
            files[path.relative_to(ROOT).as_posix()] = path
    return {
        name: path
        for name, path in files.items()
        if not any(fnmatch.fnmatchcase(name, pattern) for pattern in LEFT_OUT_FILES)
    }


def add_file(archive: zipfile.ZipFile, name: str, source: Path) -> None:
    info = zipfile.ZipInfo(name, date_time=ZIP_DATE)
    info.external_attr = 0o100644 << 16  # world-readable: Lambda runs as another user
    info.compress_type = zipfile.ZIP_DEFLATED
    archive.writestr(info, source.read_bytes())


def parse_args(argv: list[str] | None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--out", type=Path, default=ROOT / "build" / "lambda")
    parser.add_argument("--arch", choices=sorted(WHEEL_ARCH), default="x86_64")
    parser.add_argument("--max-zipped-mb", type=float, default=50.0)
    parser.add_argument("--max-unzipped-mb", type=float, default=250.0)
    parser.add_argument(
        "--layer-mb",
        type=float,
        default=170.0,
        help="unzipped size of the AWS SDK for pandas layer, taken off --max-unzipped-mb",
    )
    return parser.parse_args(argv)


def main(argv: list[str] | None = None) -> int:
    args = parse_args(argv)
    if sys.version_info[:2] != LAMBDA_PYTHON:
        print(
            f"error: run this with Python {'.'.join(map(str, LAMBDA_PYTHON))}, the Lambda "
            f"runtime's version (this is {sys.version.split()[0]})",
            file=sys.stderr,
        )
        return 1
    dists = distributions_to_bundle()
    problems = [problem for dist in dists if (problem := platform_problem(dist, args.arch))]
    if problems:
        print(
            f"error: installed for another platform than Lambda ({args.arch}, glibc <= "
            f"{'.'.join(map(str, LAMBDA_GLIBC))}): {'; '.join(problems)}; build on Linux "
            f"{args.arch} in a python3.11 venv (e.g. the public.ecr.aws/sam/build-python3.11 "
            "image)",
            file=sys.stderr,
        )
        return 1
    files = bundle_files(dists)
    shared_bytes = sum(path.stat().st_size for path in files.values())
    args.out.mkdir(parents=True, exist_ok=True)
    # Compress the shared part once; each function's zip is a copy plus its app.py.
    shared_zip = args.out / ".shared.zip"
    with zipfile.ZipFile(shared_zip, "w") as archive:
        for name in sorted(files):
            add_file(archive, name, files[name])
    unzipped_budget = args.max_unzipped_mb - args.layer_mb
    print(f"bundled: {', '.join(f'{d.name} {d.version}' for d in dists)}")
    print(f"left out: {'; '.join(f'{name} ({why})' for name, why in LEFT_OUT.items())}")
    print(f"left out files: {'; '.join(f'{p} ({why})' for p, why in LEFT_OUT_FILES.items())}")
    failures = []
    for function in FUNCTIONS:
        app = ROOT / "lambdas" / function / "app.py"
        target = args.out / f"{function}.zip"
        shutil.copyfile(shared_zip, target)
        with zipfile.ZipFile(target, "a") as archive:
            add_file(archive, "app.py", app)
        zipped_mb = target.stat().st_size / MB
        unzipped_mb = (shared_bytes + app.stat().st_size) / MB
        print(
            f"{target}: {zipped_mb:.1f} MB zipped (limit {args.max_zipped_mb:g}), "
            f"{unzipped_mb:.1f} MB unzipped (limit {unzipped_budget:g}: "
            f"{args.max_unzipped_mb:g} minus {args.layer_mb:g} for the layer)"
        )
        if zipped_mb > args.max_zipped_mb:
            failures.append(
                f"{target.name} is {zipped_mb:.1f} MB zipped, over the "
                f"{args.max_zipped_mb:g} MB limit (--max-zipped-mb)"
            )
        if unzipped_mb > unzipped_budget:
            failures.append(
                f"{target.name} is {unzipped_mb:.1f} MB unzipped, over the {unzipped_budget:g} "
                f"MB left beside the {args.layer_mb:g} MB layer (--max-unzipped-mb, --layer-mb)"
            )
    shared_zip.unlink()
    if failures:
        print(f"error: {'; '.join(failures)}", file=sys.stderr)
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main())
