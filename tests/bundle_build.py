"""One build of the installer for the whole test run: packaging/build.sh into a temporary folder, giving the
bundle folder, the .tar.xz archive and the Debian package (tests/test_bundle.py, tests/test_deb_package.py)."""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
from dataclasses import dataclass
from pathlib import Path

import pytest

from tests.conftest import ROOT


@dataclass(frozen=True)
class Build:
    bundle: Path  # dist/parley, as PyInstaller left it (a test may remove it)
    archive: Path  # parley-VERSION-linux-ARCH.tar.xz
    deb: Path  # parley_VERSION_ARCH.deb
    log: str


@pytest.fixture(scope="session")
def installer_build(tmp_path_factory) -> Build:
    out = tmp_path_factory.mktemp("bundle")
    reuse = os.environ.get("PARLEY_TEST_REUSE_DIST")  # a developer's shortcut: a dist/ that build.sh made before
    if reuse:
        dist = out / "dist"
        shutil.copytree(reuse, dist, symlinks=True)
        (archive,) = list(dist.glob("parley-*-linux-*.tar.xz"))
        (deb,) = list(dist.glob("parley_*.deb"))
        return Build(dist / "parley", archive, deb, "")
    done = subprocess.run(
        ["bash", str(ROOT / "packaging" / "build.sh"), "--dist", str(out / "dist"), "--work", str(out / "work")],
        cwd=str(ROOT),
        env=dict(os.environ, PYTHON=sys.executable),
        capture_output=True,
        text=True,
        timeout=2400,
    )
    assert done.returncode == 0, f"build failed:\n{done.stdout[-4000:]}\n{done.stderr[-6000:]}"
    (archive,) = list((out / "dist").glob("parley-*-linux-*.tar.xz"))
    (deb,) = list((out / "dist").glob("parley_*.deb"))
    assert not list((out / "dist").glob("*.tar.gz")), "the two-archive split is gone: one archive, the engine inside"
    shutil.rmtree(out / "work", ignore_errors=True)
    return Build(out / "dist" / "parley", archive, deb, done.stdout + done.stderr)
