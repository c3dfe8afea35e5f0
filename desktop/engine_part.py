"""Whether this copy of Parley has its whole offline engine, and how to get it back when it does not.

The installers carry everything (packaging/build.sh): on Linux a Debian package (`parley_VERSION_ARCH.deb`,
installed under /opt/parley) and one archive (`parley-VERSION-linux-ARCH.tar.xz`) for other distributions.
The engine's part of the bundle (its models and the runtimes only the engine process loads, see
packaging/bundle_rules.py) carries a manifest of its files (`_internal/parley-engine-part.txt`, written by
packaging/parley.spec). A copy with files of it missing (an unpacking cut short, a file deleted) reports the
offline engine as incomplete instead of starting an engine that would fail on its first import; Parley
still works with a cloud model then. From a source checkout the engine is always there.
"""

from __future__ import annotations

import platform
import sys
from pathlib import Path

from . import __version__

#: Written by packaging/parley.spec into the bundle's `_internal/`; it lists the engine's files, for the check below.
#: The same name is packaging/bundle_rules.ENGINE_MANIFEST.
ENGINE_MANIFEST = "parley-engine-part.txt"

#: Exit code of `parley --engine` when the engine part is missing.
EXIT_NOT_INSTALLED = 3


def archive_name(version: str = __version__) -> str:
    """The one archive's file name for this platform, as packaging/build.sh names it."""
    system = {"linux": "linux", "darwin": "macos", "win32": "windows"}.get(sys.platform, sys.platform)
    return f"parley-{version}-{system}-{platform.machine()}.tar.xz"


def package_name(version: str = __version__) -> str:
    """The Debian package's file name (its architecture as dpkg names it), as packaging/linux/make_deb.py does."""
    arch = {"x86_64": "amd64", "aarch64": "arm64", "armv7l": "armhf", "i686": "i386"}.get(platform.machine(),
                                                                                         platform.machine())
    return f"parley_{version}_{arch}.deb"


#: Where the Debian package installs the bundle.
PACKAGE_DIR = Path("/opt/parley")


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
    """How to get the engine back: reinstall the package, or unpack the archive again; or use a cloud model."""
    base = _bundle_dir()
    app_folder = Path(sys.executable).resolve().parent
    if base is not None and app_folder == PACKAGE_DIR:
        how = f"reinstall the package (sudo apt install --reinstall ./{package_name()})"
    elif base is not None:
        how = f"unpack {archive_name()} again into {app_folder.parent}, where this copy of Parley ({app_folder.name}) was unpacked"
    else:
        how = f"reinstall Parley ({package_name()} or {archive_name()})"
    return f"{how}; or use a cloud model instead (set OPENAI_API_KEY, or start Parley with --url)"


def not_installed_message() -> str | None:
    """One sentence for the window, stderr and logs when the engine is missing; None when it is installed."""
    problem = engine_part_problem()
    if problem is None:
        return None
    return f"the offline engine is {problem} in this copy of Parley. To get it back, {install_hint()}."
