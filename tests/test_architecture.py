"""The layering in DESIGN.md, held by import-linter's contracts in pyproject.toml.

core imports neither Qt nor the window or command line; the window does not import the command line;
no modules import each other round a loop. The second test breaks a copy of the package on purpose to
show the contracts notice.
"""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
LINT = "import sys; from importlinter.cli import lint_imports_command; sys.exit(lint_imports_command())"


def lint_imports(cwd: Path, package_parent: Path) -> subprocess.CompletedProcess:
    """`lint-imports` on the pyproject.toml in cwd, analysing the package found in package_parent."""
    env = {**os.environ, "PYTHONPATH": str(package_parent)}
    return subprocess.run(
        [sys.executable, "-c", LINT, "--no-cache"],
        cwd=cwd,
        env=env,
        capture_output=True,
        text=True,
        timeout=300,
    )


def test_the_import_contracts_hold():
    result = lint_imports(ROOT, ROOT)
    assert result.returncode == 0, result.stdout + result.stderr
    assert "3 kept, 0 broken" in result.stdout, result.stdout


def test_the_contracts_catch_qt_in_core_gui_using_the_cli_and_a_cycle(tmp_path):
    shutil.copy(ROOT / "pyproject.toml", tmp_path)
    package = tmp_path / "imgclust_desktop"
    shutil.copytree(ROOT / "imgclust_desktop", package, ignore=shutil.ignore_patterns("__pycache__"))

    def append(relative: str, line: str) -> None:
        with open(package / relative, "a") as f:
            f.write(f"\n{line}\n")

    append("core/palette.py", "from PySide6 import QtGui  # noqa")
    append("gui/colors.py", "from imgclust_desktop.cli_common import BadArguments  # noqa")
    append("core/reduce.py", "from imgclust_desktop.core import session  # noqa")  # session -> ... -> reduce

    result = lint_imports(tmp_path, tmp_path)
    out = result.stdout
    assert result.returncode == 1, out + result.stderr
    assert "0 kept, 3 broken" in out, out
    assert "imgclust_desktop.core.palette -> PySide6" in out
    assert "imgclust_desktop.gui.colors -> imgclust_desktop.cli_common" in out
    assert "No cycles are allowed in imgclust_desktop.core" in out
