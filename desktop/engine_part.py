"""Whether this copy of Parley has its offline engine, and how to add it when it does not.

On Linux the installer is two archives that unpack into the same folder: the app, and the offline engine
(`parley-VERSION-linux-ARCH-engine.tar.gz`: the engine's models and the runtimes only the engine process
loads, see packaging/bundle_rules.py). With the app archive alone Parley works with a cloud model, and
the offline engine is reported as not installed instead of being started. The engine part carries a
manifest of its files (`_internal/parley-engine-part.txt`, written by packaging/parley.spec); from a source
checkout the engine is always there.
"""

from __future__ import annotations

import platform
import sys
from pathlib import Path

from . import __version__

#: Written by packaging/parley.spec into the bundle's `_internal/`; it ships in the engine archive.
#: The same name is packaging/bundle_rules.ENGINE_MANIFEST.
ENGINE_MANIFEST = "parley-engine-part.txt"

#: Exit code of `parley --engine` when the engine part is missing.
EXIT_NOT_INSTALLED = 3


def archive_name(version: str = __version__) -> str:
    """The engine archive's file name for this platform, as packaging/build.sh names it."""
    system = {"linux": "linux", "darwin": "macos", "win32": "windows"}.get(sys.platform, sys.platform)
    return f"parley-{version}-{system}-{platform.machine()}-engine.tar.gz"


def _bundle_dir() -> Path | None:
    if not getattr(sys, "frozen", False):
        return None
    meipass = getattr(sys, "_MEIPASS", None)
    return Path(meipass) if meipass else Path(sys.executable).resolve().parent


def engine_part_problem() -> str | None:
    """None when the offline engine can run here; otherwise "not installed" or "incomplete (...)"."""
    base = _bundle_dir()
    if base is None:
        return None  # from source: the engine's packages are dependencies of the project
    manifest = base / ENGINE_MANIFEST
    try:
        lines = manifest.read_text(encoding="utf-8").splitlines()
    except FileNotFoundError:
        return "not installed"
    except OSError as exc:
        return f"not readable ({manifest}: {exc.strerror or exc})"
    missing = [ln for ln in (line.strip() for line in lines) if ln and not ln.startswith("#") and not (base / ln).exists()]
    if missing:
        return f"incomplete ({len(missing)} of its files are missing, e.g. {missing[0]})"
    return None


def install_hint() -> str:
    """How to add the engine: which archive, unpacked where; or use a cloud model instead."""
    base = _bundle_dir()
    app_folder = Path(sys.executable).resolve().parent
    where = f"into {app_folder.parent}, where this copy of Parley ({app_folder.name}) was unpacked" if base else \
        "into the folder Parley was unpacked in"
    return (f"unpack {archive_name()} {where}; or use a cloud model instead (set OPENAI_API_KEY, or start "
            "Parley with --url)")


def not_installed_message() -> str | None:
    """One sentence for the window, stderr and logs when the engine is missing; None when it is installed."""
    problem = engine_part_problem()
    if problem is None:
        return None
    return f"the offline engine is {problem} in this copy of Parley. To add it, {install_hint()}."
