"""./dev's python_bin, the real function text taken from ./dev: a pyenv shim for a version that is not installed
(on PATH, but it fails and says so on stderr) is skipped quietly, and the Python chosen is 3.10 or newer."""

from __future__ import annotations

import os
import re
import subprocess
from pathlib import Path

DEV = Path(__file__).resolve().parent.parent / "dev"

PYENV_SHIM = """#!/usr/bin/env bash
echo "pyenv: $(basename "$0"): command not found" >&2
echo >&2
echo "The \\`$(basename "$0")' command exists in these Python versions:" >&2
echo "  3.12.4" >&2
exit 127
"""


def _function(name: str) -> str:
    text = DEV.read_text()
    match = re.search(rf"^{name}\(\) \{{.*\}}$", text, re.M)  # a one-line function
    if match is None:
        match = re.search(rf"^{name}\(\) \{{\n.*?^\}}$", text, re.S | re.M)
    assert match, f"{name} not found in ./dev"
    return match.group(0)


def _run_python_bin(path: str) -> subprocess.CompletedProcess:
    script = f"set -euo pipefail\n{_function('say')}\n{_function('python_bin')}\npython_bin\n"
    return subprocess.run(["bash", "-c", script], env=dict(os.environ, PATH=path), capture_output=True, text=True,
                          timeout=30)


def test_a_failing_pyenv_shim_is_skipped_without_an_error_and_a_good_python_is_chosen(tmp_path):
    shims = tmp_path / "shims"
    shims.mkdir()
    for name in ("python3.13", "python3.12"):
        shim = shims / name
        shim.write_text(PYENV_SHIM)
        shim.chmod(0o755)
    result = _run_python_bin(f"{shims}:{os.environ['PATH']}")
    assert result.returncode == 0, result.stderr
    assert result.stderr == ""
    chosen = result.stdout.strip()
    assert chosen and not chosen.startswith(str(shims)), chosen
    version = subprocess.run([chosen, "-c", "import sys; print(sys.version_info[:2] >= (3, 10))"],
                             capture_output=True, text=True, timeout=30)
    assert version.stdout.strip() == "True", (chosen, version.stdout, version.stderr)


def test_without_any_good_python_it_says_what_is_needed(tmp_path):
    shims = tmp_path / "shims"
    shims.mkdir()
    for name in ("python3.13", "python3.12", "python3.11", "python3.10", "python3"):
        shim = shims / name
        shim.write_text(PYENV_SHIM)
        shim.chmod(0o755)
    bash_dir = os.path.dirname(subprocess.run(["bash", "-c", "command -v bash"], capture_output=True,
                                              text=True).stdout.strip())
    result = _run_python_bin(f"{shims}:{tmp_path / 'empty'}:{bash_dir}" if bash_dir else str(shims))
    assert result.returncode == 1
    assert "Python 3.10 or newer is needed" in result.stderr
    assert "pyenv" not in result.stderr
