"""Replace the HEVC *encoder* inside a built bundle's pillow-heif with a tiny stand-in (23 MB → ~15 KB).

    python packaging/stub_x265.py [--no-check] BUNDLE_INTERNAL/pillow_heif.libs

pillow-heif's wheel ships libheif linked against three libraries: libde265 (the HEVC decoder, which reads
HEIC photos), libx265 (the HEVC encoder, which writes them: 23 MB) and the C runtime. Parley only reads
HEIC photos (attached iPhone pictures are re-encoded as JPEG or PNG before they are sent), so the encoder
is dead weight. libheif needs exactly two of its symbols to load — `x265_api_get_NNN` (the encoder's
entry point, looked up when an encode starts) and `x265_cleanup` — so this builds a library with the same
soname that exports those two: the entry point returns NULL ("no encoder for this bit depth", which libheif
reports as an encoding error) and the cleanup does nothing.

The symbols libheif imports are read from the bundle (`nm -D --undefined-only`); any x265 symbol other than
those two stops the script (exit 1) and the library is left as it was: a new pillow-heif needs a look, not a
silent skip. With `--check` (the default) the new library set is loaded with ctypes and libheif must report
its version and still have a HEVC decoder. `parley --self-test` then decodes a HEIC photo in the bundle.
"""

from __future__ import annotations

import argparse
import ctypes
import re
import shutil
import subprocess
import sys
import tempfile
from pathlib import Path

ENTRY = re.compile(r"^x265_api_get_(\d+)$")
KNOWN = {"x265_cleanup"}
HEIF_COMPRESSION_HEVC = 1  # enum heif_compression_format


def _run(cmd: list[str]) -> str:
    try:
        return subprocess.run(cmd, check=True, capture_output=True, text=True).stdout
    except FileNotFoundError:
        raise SystemExit(f"stub_x265: {cmd[0]} is not installed (Debian packages: binutils, gcc)") from None
    except subprocess.CalledProcessError as exc:
        raise SystemExit(f"stub_x265: {' '.join(cmd)} failed: {exc.stderr.strip()}") from None


def _soname(lib: Path) -> str:
    match = re.search(r"\(SONAME\)\s+Library soname: \[([^\]]+)\]", _run(["readelf", "-d", str(lib)]))
    if not match:
        raise SystemExit(f"stub_x265: {lib.name} has no soname")
    return match.group(1)


def _stub_source(symbols: list[str]) -> str:
    lines = ["/* Stand-in for libx265 in Parley's bundle: no HEVC encoder (see packaging/stub_x265.py). */"]
    for name in symbols:
        if ENTRY.match(name):
            lines.append(f"const void *{name}(int bit_depth) {{ (void)bit_depth; return 0; }}")
        elif name == "x265_cleanup":
            lines.append("void x265_cleanup(void) {}")
    return "\n".join(lines) + "\n"


def stub(libs: Path, check: bool = True) -> tuple[int, int]:
    """Replace libx265 in `libs` (pillow_heif.libs); returns (bytes before, bytes after)."""
    heif = sorted(libs.glob("libheif*.so*"))
    x265 = sorted(libs.glob("libx265*.so*"))
    if len(heif) != 1 or len(x265) != 1:
        raise SystemExit(f"stub_x265: expected one libheif and one libx265 in {libs}, found {heif + x265}")
    heif_lib, x265_lib = heif[0], x265[0]
    wanted = sorted(line.split()[-1] for line in _run(["nm", "-D", "--undefined-only", str(heif_lib)]).splitlines()
                    if line.split() and "x265" in line.split()[-1])
    unknown = [s for s in wanted if not ENTRY.match(s) and s not in KNOWN]
    if unknown or not any(ENTRY.match(s) for s in wanted):
        raise SystemExit(f"stub_x265: libheif imports x265 symbols this stub does not know: {wanted}")
    soname = _soname(x265_lib)
    before = x265_lib.stat().st_size
    with tempfile.TemporaryDirectory(prefix="parley-x265-") as tmp:
        src = Path(tmp) / "x265_stub.c"
        out = Path(tmp) / soname
        src.write_text(_stub_source(wanted))
        _run(["gcc", "-shared", "-fPIC", "-O2", "-s", f"-Wl,-soname,{soname}", "-o", str(out), str(src)])
        backup = Path(tmp) / "original"
        shutil.copy2(x265_lib, backup)
        shutil.copyfile(out, x265_lib)
        if check:
            problem = _check(heif_lib)
            if problem is not None:
                shutil.copy2(backup, x265_lib)
                raise SystemExit(f"stub_x265: {problem}; the original library was put back")
    return before, x265_lib.stat().st_size


def _check(heif_lib: Path) -> str | None:
    """Load libheif with the stub in a child process (a failed load must not take this one down)."""
    code = (
        "import ctypes, sys\n"
        f"lib = ctypes.CDLL({str(heif_lib)!r})\n"
        "lib.heif_get_version.restype = ctypes.c_char_p\n"
        "lib.heif_have_decoder_for_format.restype = ctypes.c_int\n"
        "init = getattr(lib, 'heif_init', None)\n"
        "if init is not None: init(None)\n"
        f"print(lib.heif_get_version().decode(), lib.heif_have_decoder_for_format({HEIF_COMPRESSION_HEVC}))\n"
    )
    result = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True)
    if result.returncode != 0:
        return f"libheif does not load with the stand-in: {result.stderr.strip()[-300:]}"
    fields = result.stdout.split()
    if len(fields) != 2 or fields[1] == "0":
        return f"libheif loads but has no HEVC decoder ({result.stdout.strip()!r})"
    return None


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("libs", type=Path, help="the bundle's pillow_heif.libs folder")
    ap.add_argument("--no-check", action="store_true", help="do not load the result to check it")
    args = ap.parse_args(argv)
    before, after = stub(args.libs, check=not args.no_check)
    print(f"[parley] libx265 (HEVC encoder, unused): {before / 1e6:.1f} MB -> {after / 1e3:.0f} kB")
    return 0


if __name__ == "__main__":
    sys.exit(main())
