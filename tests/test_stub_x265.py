"""packaging/stub_x265.py: pillow-heif's HEVC encoder replaced by a stand-in still reads HEIC photos.

Works on a copy of the installed pillow-heif (package and its auditwheel libraries) in a temporary folder,
then decodes Parley's self-test photo with that copy in a child process, as the bundle's self-test does."""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT / "packaging"))
import stub_x265  # noqa: E402

pillow_heif = pytest.importorskip("pillow_heif")
pytestmark = pytest.mark.skipif(shutil.which("gcc") is None or shutil.which("nm") is None,
                                reason="needs gcc and binutils (./dev installs them)")


def _copy_pillow_heif(dest: Path) -> Path:
    site = Path(pillow_heif.__file__).resolve().parent.parent
    shutil.copytree(site / "pillow_heif", dest / "pillow_heif")
    shutil.copytree(site / "pillow_heif.libs", dest / "pillow_heif.libs")
    return dest / "pillow_heif.libs"


def test_the_stand_in_is_tiny_and_heic_photos_still_decode(tmp_path):
    libs = _copy_pillow_heif(tmp_path)
    before, after = stub_x265.stub(libs)
    assert before > 10_000_000 and after < 100_000
    code = (
        "import pillow_heif, sys\n"
        f"assert pillow_heif.__file__.startswith({str(tmp_path)!r}), pillow_heif.__file__\n"
        f"sys.path.insert(0, {str(ROOT)!r})\n"
        "from desktop.ui.self_test import _check_images\n"
        "print(_check_images())\n"
    )
    env = dict(os.environ, PYTHONPATH=str(tmp_path))
    result = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, env=env, timeout=120)
    assert result.returncode == 0, result.stderr[-2000:]
    assert result.stdout.strip().splitlines()[-1] == "None", result.stdout


def test_unknown_encoder_symbols_stop_the_build(tmp_path, monkeypatch):
    libs = _copy_pillow_heif(tmp_path)
    real = stub_x265._run

    def nm_with_an_extra_symbol(cmd):
        out = real(cmd)
        return out + "                 U x265_encoder_open_217\n" if cmd[0] == "nm" else out

    monkeypatch.setattr(stub_x265, "_run", nm_with_an_extra_symbol)
    original = next(libs.glob("libx265*")).stat().st_size
    with pytest.raises(SystemExit, match="does not know"):
        stub_x265.stub(libs)
    assert next(libs.glob("libx265*")).stat().st_size == original  # left as it was
