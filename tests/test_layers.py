"""The package's layers contract (pyproject's ``[tool.importlinter]``), checked by import-linter.

Data flows one way: cli > migrate > pipeline > reporting > warehouse > transform > extract >
lake > the shared modules (config, aws, bounded_http, progress, errors). A module never imports
one of a layer above it, not even inside a function; the transform's decoding imports no I/O
module; only the demo imports the local Spotify and archive servers.
"""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
LINT_IMPORTS = Path(sys.executable).with_name("lint-imports")


def _lint_imports(package_parent: Path) -> subprocess.CompletedProcess:
    """import-linter on the package found first on the path (``package_parent``), with the
    project's own contracts; no cache, so a changed copy is read afresh."""
    if not LINT_IMPORTS.exists():
        pytest.fail(f"{LINT_IMPORTS} is missing: run make test (it installs the dev extra)")
    environment = {**os.environ, "PYTHONPATH": str(package_parent)}
    return subprocess.run(
        [str(LINT_IMPORTS), str(ROOT / "pyproject.toml"), "--no-cache"],
        cwd=package_parent,  # import-linter puts its working folder first on the path
        env=environment,
        capture_output=True,
        text=True,
        timeout=300,
    )


def test_the_package_keeps_its_layers():
    result = _lint_imports(ROOT)
    assert result.returncode == 0, result.stdout + result.stderr
    assert "0 broken" in result.stdout


def _copy_of_the_package(tmp_path: Path) -> Path:
    copy = tmp_path / "etl_lib"
    shutil.copytree(ROOT / "etl_lib", copy, ignore=shutil.ignore_patterns("__pycache__"))
    return copy


def test_an_import_reaching_back_up_the_flow_breaks_the_contract(tmp_path):
    """The same check fails on a copy of the package whose transform imports the pipeline
    (inside a function, where a lazy import would hide it from a reader)."""
    copy = _copy_of_the_package(tmp_path)
    decode = copy / "transform" / "decode.py"
    decode.write_text(
        decode.read_text(encoding="utf-8")
        + "\n\ndef _reaches_up():\n    from etl_lib import pipeline\n\n    return pipeline\n",
        encoding="utf-8",
    )
    result = _lint_imports(tmp_path)
    assert result.returncode != 0
    assert "etl_lib.transform.decode -> etl_lib.pipeline" in result.stdout, result.stdout


def test_io_in_the_decoder_breaks_the_contract(tmp_path):
    copy = _copy_of_the_package(tmp_path)
    decode = copy / "transform" / "decode.py"
    decode.write_text(
        decode.read_text(encoding="utf-8") + "\n\nimport fsspec  # noqa: E402\n",
        encoding="utf-8",
    )
    result = _lint_imports(tmp_path)
    assert result.returncode != 0
    assert "etl_lib.transform.decode is not allowed to import fsspec" in result.stdout, (
        result.stdout
    )
