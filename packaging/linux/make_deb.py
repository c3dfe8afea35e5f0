"""Pack the PyInstaller one-folder bundle as a Debian package: `parley_VERSION_ARCH.deb`.

    python packaging/linux/make_deb.py BUNDLE_DIR OUT_DIR [--version V] [--level N] [--max-mb MB]

What the package holds (everything: the app, the offline engine and its models):

    /opt/parley/                      the bundle, as built (parley + _internal/)
    /usr/bin/parley                   a symlink to /opt/parley/parley (PyInstaller finds _internal/ from the
                                      symlink's target)
    /usr/share/applications/parley.desktop
    /usr/share/icons/hicolor/*/apps/parley.png, scalable/apps/parley.svg
    /usr/share/doc/parley/copyright, THIRD_PARTY_NOTICES.md

No maintainer scripts: the menu and icon caches are refreshed by the triggers of desktop-file-utils and
the icon theme, so `apt remove` takes away every file the package put there, and the user's settings and
conversations (under ~/.config and ~/.local/share) stay.

`Depends` is measured, as dpkg-shlibdeps would: the shared libraries that the bundle's ELF files need and
that the bundle does not carry (the graphics stack and the C library, which PyInstaller leaves to the
system), each mapped to the Debian package that holds it on the build machine with `dpkg -S`. Added to
that, what the bundle opens at run time without a DT_NEEDED entry: ALSA's configuration (the bundled
libasound reads it), and a sound server and fonts as recommendations.

The data is compressed with xz (level 6 by default, multithreaded): `python -m bench bundle` and
docs/packaging.md compare it with gzip and zstd. The build fails when the .deb is over `--max-mb`.
"""

from __future__ import annotations

import argparse
import hashlib
import os
import shutil
import subprocess
import sys
import tempfile
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]
INSTALL_DIR = "/opt/parley"
#: The download's size budget (issue 18), enforced when the package is built.
MAX_DEB_MB = 180.0
ICON_SIZES = (16, 24, 32, 48, 64, 128, 256, 512)

#: Opened at run time by name, not through DT_NEEDED: the bundled libasound reads ALSA's configuration from
#: the system (and its plugins, for PulseAudio or PipeWire, from there too).
RUNTIME_DEPENDS = ["libasound2-data"]
RECOMMENDS = [
    "pulseaudio | pipewire-pulse",  # a sound server that the ALSA plugin below reaches
    "libasound2-plugins | pipewire-alsa",  # ALSA's PulseAudio / PipeWire plugin: PortAudio goes through ALSA
    "fonts-dejavu-core | fonts-liberation2 | fonts-freefont-ttf",  # Qt draws text with the system's fonts
    "desktop-file-utils",  # refreshes the menu when the package comes and goes (a trigger, no script of ours)
]
#: The C library's own sonames map to libc6 whatever dpkg -S says about usrmerge paths.
LIBC = {"ld-linux-x86-64.so.2", "ld-linux-aarch64.so.1", "libc.so.6", "libm.so.6", "libdl.so.2", "libpthread.so.0",
        "librt.so.1", "libmvec.so.1", "libutil.so.1", "libresolv.so.2"}


def _elf_files(bundle: Path):
    for path in bundle.rglob("*"):
        if path.is_file() and not path.is_symlink():
            try:
                with path.open("rb") as f:
                    if f.read(4) == b"\x7fELF":
                        yield path
            except OSError:
                continue


def needed_from_system(bundle: Path) -> list[str]:
    """Sonames some ELF file of the bundle needs and no file in the bundle provides."""
    have = {p.name for p in bundle.rglob("*") if ".so" in p.name}
    needed: set[str] = set()
    for elf in _elf_files(bundle):
        out = subprocess.run(["readelf", "-d", str(elf)], capture_output=True, text=True).stdout
        for line in out.splitlines():
            if "(NEEDED)" in line and "[" in line:
                needed.add(line.rsplit("[", 1)[1].rstrip("]"))
    return sorted(needed - have)


def _system_path(soname: str) -> str | None:
    out = subprocess.run(["ldconfig", "-p"], capture_output=True, text=True).stdout
    for line in out.splitlines():
        parts = line.strip().split(" => ")
        if len(parts) == 2 and parts[0].split(" ")[0] == soname:
            return parts[1].strip()
    return None


def package_of(path: str) -> str | None:
    """The Debian package holding this file; tries the path, its target and the usrmerge twin."""
    real = os.path.realpath(path)
    candidates = [path, real]
    for p in list(candidates):
        if p.startswith("/usr/lib/"):
            candidates.append(p[len("/usr"):])
        elif p.startswith("/lib/"):
            candidates.append("/usr" + p)
    for cand in candidates:
        done = subprocess.run(["dpkg", "-S", cand], capture_output=True, text=True)
        if done.returncode == 0 and done.stdout:
            return done.stdout.split(":", 1)[0].split(",")[0].strip()
    return None


def system_depends(bundle: Path) -> list[str]:
    packages: set[str] = set()
    unknown = []
    for soname in needed_from_system(bundle):
        if soname in LIBC:
            packages.add("libc6")
            continue
        where = _system_path(soname)
        pkg = package_of(where) if where else None
        if pkg is None:
            unknown.append(soname)
        else:
            packages.add(pkg)
    if unknown:
        raise SystemExit(f"make_deb: no Debian package found for {', '.join(unknown)} (needed by the bundle, not in it)")
    return sorted(packages)


def debian_arch() -> str:
    return subprocess.run(["dpkg", "--print-architecture"], capture_output=True, text=True, check=True).stdout.strip()


def deb_name(version: str, arch: str | None = None) -> str:
    return f"parley_{version}_{arch or debian_arch()}.deb"


def _copy_tree(src: Path, dst: Path) -> None:
    """Hard links where the file system allows (the staging tree is thrown away), else copies."""
    def link_or_copy(s, d):
        try:
            os.link(s, d)
        except OSError:
            shutil.copy2(s, d)
    shutil.copytree(src, dst, symlinks=True, copy_function=link_or_copy)


def _installed_kib(tree: Path) -> int:
    total = 0
    for p in tree.rglob("*"):
        if p.is_symlink() or p.is_dir():
            total += 1024
        elif p.is_file():
            total += p.stat().st_size
    return (total + 1023) // 1024


def stage(bundle: Path, staging: Path, version: str, arch: str) -> dict:
    app = staging / INSTALL_DIR.lstrip("/")
    app.parent.mkdir(parents=True)
    _copy_tree(bundle, app)
    for leftover in ("share", "install-desktop-entry.sh"):  # the archive's own menu helper: the package has its own
        target = app / leftover
        if target.is_dir():
            shutil.rmtree(target)
        elif target.exists():
            target.unlink()
    (staging / "usr/bin").mkdir(parents=True)
    os.symlink(f"{INSTALL_DIR}/parley", staging / "usr/bin/parley")
    apps = staging / "usr/share/applications"
    apps.mkdir(parents=True)
    entry = (ROOT / "packaging/linux/parley.desktop").read_text(encoding="utf-8").replace("@PARLEY_DIR@/parley", "parley")
    (apps / "parley.desktop").write_text(entry.replace("Exec=parley", "TryExec=parley\nExec=parley", 1), encoding="utf-8")
    icons = staging / "usr/share/icons/hicolor"
    for size in ICON_SIZES:
        d = icons / f"{size}x{size}/apps"
        d.mkdir(parents=True)
        shutil.copy2(ROOT / f"resources/icons/parley-{size}.png", d / "parley.png")
    (icons / "scalable/apps").mkdir(parents=True)
    shutil.copy2(ROOT / "resources/icons/parley.svg", icons / "scalable/apps/parley.svg")
    doc = staging / "usr/share/doc/parley"
    doc.mkdir(parents=True)
    shutil.copy2(ROOT / "THIRD_PARTY_NOTICES.md", doc / "THIRD_PARTY_NOTICES.md")
    (doc / "copyright").write_text(
        "Format: https://www.debian.org/doc/packaging-manuals/copyright-format/1.0/\n"
        "Upstream-Name: Parley\n\n"
        "Files: *\n"
        "Copyright: The Parley team\n"
        "License: GPL-3.0-or-later\n"
        " On Debian systems the full text of the GNU General Public License version 3 is in\n"
        " /usr/share/common-licenses/GPL-3; it is also in /opt/parley/_internal/LICENSE.\n"
        " The bundled libraries, models and voices and their terms are listed in\n"
        " /usr/share/doc/parley/THIRD_PARTY_NOTICES.md.\n",
        encoding="utf-8",
    )
    for p in staging.rglob("*"):  # the package's files: root's, world-readable (dpkg-deb --root-owner-group)
        if p.is_symlink():
            continue
        mode = p.stat().st_mode
        os.chmod(p, 0o755 if p.is_dir() or mode & 0o111 else 0o644)
    depends = system_depends(bundle) + RUNTIME_DEPENDS
    control = staging / "DEBIAN"
    control.mkdir()
    fields = {
        "Package": "parley",
        "Version": version,
        "Architecture": arch,
        "Maintainer": "The Parley team <parley@users.noreply.invalid>",
        "Installed-Size": str(_installed_kib(staging)),
        "Depends": ", ".join(depends),
        "Recommends": ", ".join(RECOMMENDS),
        "Section": "sound",
        "Priority": "optional",
        "Description": "talk to realtime speech-to-speech models with your voice, images and screen\n"
                       " Parley is a desktop app for people who build voice agents: talk to the OpenAI\n"
                       " Realtime API or to its embedded offline engine (Silero VAD, Whisper, Piper),\n"
                       " interrupt the answer at any moment, tune turn detection live, and show the\n"
                       " model images and your screen.",
    }
    (control / "control").write_text("".join(f"{k}: {v}\n" for k, v in fields.items()), encoding="utf-8")
    sums = []
    for p in sorted(staging.rglob("*")):
        if p.is_file() and not p.is_symlink() and control not in p.parents:
            sums.append(f"{hashlib.md5(p.read_bytes()).hexdigest()}  {p.relative_to(staging)}\n")
    (control / "md5sums").write_text("".join(sums), encoding="utf-8")
    return fields


def build(bundle: Path, out_dir: Path, version: str, level: int = 6, max_mb: float = MAX_DEB_MB,
          compression: str = "xz") -> Path:
    arch = debian_arch()
    out_dir.mkdir(parents=True, exist_ok=True)
    deb = out_dir / deb_name(version, arch)
    with tempfile.TemporaryDirectory(prefix="parley-deb-", dir=out_dir) as tmp:
        staging = Path(tmp) / "root"
        fields = stage(bundle, staging, version, arch)
        threads = str(max(1, os.cpu_count() or 1))
        subprocess.run(["dpkg-deb", "--root-owner-group", f"-Z{compression}", f"-z{level}", f"--threads-max={threads}",
                        "--build", str(staging), str(deb)], check=True, stdout=subprocess.DEVNULL)
    mb = deb.stat().st_size / 1e6
    print(f"[parley] packed {deb} ({mb:.1f} MB; installs {int(fields['Installed-Size']) / 1024:.1f} MB;"
          f" Depends: {fields['Depends']})")
    if mb > max_mb:
        raise SystemExit(f"make_deb: {deb.name} is {mb:.1f} MB, over its budget of {max_mb:.0f} MB")
    return deb


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("bundle", type=Path)
    ap.add_argument("out_dir", type=Path)
    ap.add_argument("--version", default=None)
    ap.add_argument("--level", type=int, default=6, help="compression level (default 6)")
    ap.add_argument("--compression", default="xz", choices=("xz", "gzip", "zstd"))
    ap.add_argument("--max-mb", type=float, default=MAX_DEB_MB)
    args = ap.parse_args(argv)
    if args.version is None:
        sys.path.insert(0, str(ROOT))
        from desktop import __version__ as version
    else:
        version = args.version
    if not (args.bundle / "parley").is_file():
        print(f"make_deb: {args.bundle} is not a Parley bundle (no parley executable in it)", file=sys.stderr)
        return 2
    build(args.bundle, args.out_dir, version, args.level, args.max_mb, args.compression)
    return 0


if __name__ == "__main__":
    sys.exit(main())
