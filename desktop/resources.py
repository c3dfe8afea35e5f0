"""Where Parley's own files (icons, sounds, the self-test recording) are, from source or from a bundle.

From a source checkout they are in `resources/` at the top of the repository; in a PyInstaller
bundle the spec copies that folder to `resources/` inside the bundle (`sys._MEIPASS`).
"""

from __future__ import annotations

import sys
from pathlib import Path


def _top() -> Path:
    """The top of the repository, or of the bundle's data (`sys._MEIPASS`) in a PyInstaller bundle."""
    bundle = getattr(sys, "_MEIPASS", None)
    if getattr(sys, "frozen", False) and bundle:
        return Path(bundle)
    return Path(__file__).resolve().parent.parent


def resources_dir() -> Path:
    return _top() / "resources"


def legal_file(name: str) -> Path:
    """`LICENSE` or `THIRD_PARTY_NOTICES.md`, at the top (the spec puts them there in the bundle)."""
    return _top() / name


def resource_path(*parts: str) -> Path:
    """`resource_path("icons", "parley.png")` → the file's path (which may not exist: callers check)."""
    return resources_dir().joinpath(*parts)


#: The recorded utterance `parley --self-test` speaks into the engine, and words its transcript must hold.
SELF_TEST_WAV = ("audio", "self_test.wav")
SELF_TEST_WORDS = ("what", "time")

#: A small HEIC photo (left half green, right half red) `parley --self-test` decodes: proves the image
#: stack (Pillow, pillow-heif, libheif with libde265) of this installation reads iPhone photos.
SELF_TEST_HEIC = ("images", "self_test.heic")
