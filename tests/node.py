"""Node.js for the JavaScript SDK tests: `node`, and `tests/js/node_modules` installed from
the lock (`.ci/run` installs both). Missing, the tests are skipped and say why; under
`CI=true` they fail instead."""

from __future__ import annotations

import os
import shutil
import subprocess
from pathlib import Path

import pytest

JS_DIR = Path(__file__).resolve().parent / "js"


def _missing(why: str) -> None:
    if os.environ.get("CI", "").lower() == "true":
        pytest.fail(f"{why} (required under CI=true: .ci/run installs it)")
    pytest.skip(why)


def node() -> tuple[str, Path]:
    """The node executable and the installed `tests/js/node_modules`."""
    found = shutil.which("node")
    if found is None:
        _missing("Node.js is not installed: the JavaScript SDK tests need node and npm")
    modules = JS_DIR / "node_modules"
    if not (modules / "@azure" / "msal-node").is_dir():
        npm = shutil.which("npm")
        if npm is None:
            _missing("npm is not installed: the JavaScript SDK tests install their packages")
        subprocess.run(
            [str(npm), "ci", "--no-audit", "--no-fund", "--silent"], cwd=JS_DIR, check=True,
            timeout=300,
        )  # fmt: skip
    return str(found), modules
