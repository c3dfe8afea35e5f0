"""Replace Qt's ICU data library in a built bundle with one holding only the data Qt can use (32 → ~7 MB).

    python packaging/trim_icu.py [--no-check] BUNDLE/_internal/PySide6/Qt/lib/libicudata.so.73

`libicudata.so.NN` is nothing but ICU's common data package (`icudtNNl.dat`) exported as one symbol,
`icudtNN_dat`. Qt 6 calls ICU for four things only — the ICU functions libQt6Core imports (no other
bundled library links ICU):

- text codecs beyond UTF-8/16/32 and Latin-1 (`ucnv_*`: QStringConverter/QStringDecoder by name);
- locale-aware case mapping (`u_strToUpper/Lower`: QLocale::toUpper/toLower; the tables are compiled
  into libicuuc, the data package is not read);
- collation (`ucol_*`: QCollator, e.g. sorting in file dialogs);
- time zones (`ucal_*`: canonical ids and display names; on Linux Qt reads the system's tz files itself).

So this keeps every converter and the converter alias table, the root-level data (time-zone rules and
metadata, calendar data, likely subtags, normalisation...), and of the locale data only root and
English: root collation (ICU's default order for every script) plus English tailorings, English time-zone
names. It drops other locales' collation tailorings (QCollator for them falls back to the root order:
a Swedish user's file dialog sorts å/ä/ö as accented a/o instead of after z), their names of zones (Qt
then gives the English name),
languages, regions, currencies and units (Qt takes those from its own CLDR tables), number spell-out
rules, transliterators and break-iterator rules and dictionaries (Qt uses its own Unicode tables for text
boundaries and never calls ubrk_*).

The new library has the same soname and entry symbol, built with ICU's own tools (Debian's icu-devtools:
`icupkg` to list/remove items, `genccode` to wrap the package as assembly) and gcc. With `--check`
(the default) a Python run with the build environment's PySide6 and the new library preloaded must give
the same results as the original for English case mapping, collation, time zones and converters, and
show that other locales degrade as described rather than fail; otherwise the library is left as it was and
the script exits 1 (build.sh then stops: a changed Qt ICU version or tool needs a look, not a silent skip).
"""

from __future__ import annotations

import argparse
import json
import os
import re
import shutil
import struct
import subprocess
import sys
import tempfile
from pathlib import Path

#: Locale subtrees of the package whose items are dropped, except for the kept locales below.
LOCALE_TREES = ("coll", "zone", "curr", "lang", "region", "unit", "rbnf", "")
#: Trees dropped whole: unreachable through the ICU functions Qt calls.
DROPPED_TREES = ("brkitr", "translit")
#: Locales kept in every locale tree: root (the fallback everything ends in) and English.
KEPT_LOCALE = re.compile(r"^(root|en|en_.*)$")
#: Root-level .res items that are not a locale's data (tables ICU reads for every locale).
NOT_LOCALES = {"res_index", "pool"}
LOCALE_ID = re.compile(r"^[a-z]{2,3}(_[A-Za-z0-9]*)*$")  # also "de__PHONEBOOK"-style aliases


def _tool(name: str) -> str:
    path = shutil.which(name) or next((p for p in (f"/usr/sbin/{name}", f"/usr/bin/{name}") if os.path.exists(p)), None)
    if path is None:
        raise SystemExit(f"trim_icu: {name} not found (Debian package icu-devtools)")
    return path


def read_data_symbol(lib: Path) -> tuple[str, bytes]:
    """(symbol name, bytes) of the `icudtNN_dat` symbol in an ELF64 little-endian shared library."""
    data = lib.read_bytes()
    if data[:4] != b"\x7fELF" or data[4] != 2 or data[5] != 1:
        raise ValueError(f"{lib} is not a 64-bit little-endian ELF file")
    shoff, = struct.unpack_from("<Q", data, 0x28)
    shentsize, shnum = struct.unpack_from("<HH", data, 0x3A)
    sections = [struct.unpack_from("<IIQQQQIIQQ", data, shoff + i * shentsize) for i in range(shnum)]
    for sh in sections:
        if sh[1] != 11:  # SHT_DYNSYM
            continue
        strtab = sections[sh[6]]
        for off in range(sh[4], sh[4] + sh[5], sh[9]):
            st_name, _info, _other, _shndx, value, size = struct.unpack_from("<IBBHQQ", data, off)
            end = data.index(b"\0", strtab[4] + st_name)
            name = data[strtab[4] + st_name:end].decode()
            if re.fullmatch(r"icudt\d+_dat", name):
                for s in sections:  # the section holding the symbol: address → file offset
                    if s[1] != 8 and s[3] <= value < s[3] + s[5]:
                        start = s[4] + value - s[3]
                        return name, data[start:start + size]
    raise ValueError(f"{lib} exports no icudtNN_dat symbol")


def items_to_drop(items: list[str]) -> list[str]:
    drop = []
    for item in items:
        tree, _, leaf = item.rpartition("/")
        stem, ext = os.path.splitext(leaf)
        if tree in DROPPED_TREES:
            drop.append(item)
        elif tree in LOCALE_TREES and ext == ".res" and stem not in NOT_LOCALES and LOCALE_ID.match(stem) \
                and not KEPT_LOCALE.match(stem):
            drop.append(item)
    return drop


def build(lib: Path, out: Path, work: Path) -> dict:
    """Write the trimmed library to `out`; returns what was kept and dropped."""
    symbol, blob = read_data_symbol(lib)
    entry = symbol[: -len("_dat")]                        # icudt73
    package = entry + ("l" if sys.byteorder == "little" else "b")  # icudt73l: the items' prefix inside
    src = work / f"{package}.dat"
    src.write_bytes(blob)
    listing = work / "items.txt"
    subprocess.run([_tool("icupkg"), "-l", "-o", str(listing), str(src)], check=True, capture_output=True)
    items = [ln.strip() for ln in listing.read_text().splitlines() if ln.strip()]
    drop = items_to_drop(items)
    drop_file = work / "drop.txt"
    drop_file.write_text("\n".join(drop) + "\n")
    trimmed_dir = work / "trimmed"
    trimmed_dir.mkdir()
    trimmed = trimmed_dir / f"{package}.dat"  # icupkg names the package after the output file
    subprocess.run([_tool("icupkg"), "-r", str(drop_file), str(src), str(trimmed)], check=True, capture_output=True)
    subprocess.run([_tool("genccode"), "-a", "gcc", "-e", entry, "-d", str(work), str(trimmed)], check=True,
                   capture_output=True)
    (asm,) = list(work.glob("*.S"))
    soname = lib.name
    subprocess.run(["gcc", "-shared", "-nostdlib", f"-Wl,-soname,{soname}", "-Wl,-z,noexecstack", "-o", str(out),
                    str(asm)], check=True, capture_output=True)
    symbol2, blob2 = read_data_symbol(out)
    if symbol2 != symbol or blob2 != trimmed.read_bytes():
        raise RuntimeError("the rebuilt library does not export the trimmed package under the same symbol")
    return {"symbol": symbol, "items": len(items), "dropped": len(drop), "before_bytes": lib.stat().st_size,
            "after_bytes": out.stat().st_size}


#: Run by `--check` with the build environment's PySide6, once with the original ICU data, once with the
#: trimmed library preloaded (its soname satisfies Qt's dependency first).
PROBE = r"""
import json, sys
from PySide6.QtCore import QCollator, QLocale, QStringDecoder, QStringEncoder, QTimeZone, QDateTime, QByteArray
maps = open("/proc/self/maps").read()
out = {"icudata": sorted({l.split()[-1] for l in maps.splitlines() if "libicudata" in l})}
for loc in ("en_US", "tr_TR", "de_DE", "sv_SE", "ja_JP"):
    q = QLocale(loc)
    out[f"upper {loc}"] = q.toUpper("istanbul straße ǆ")
    out[f"lower {loc}"] = q.toLower("İSTANBUL ΣΑΣ")
    c = QCollator(q)
    words = ["zebra", "Äpfel", "apple", "Öl", "oak", "Ångström", "item10", "item9", "ıi", "日本", "中文"]
    out[f"sort {loc}"] = sorted(words, key=c.sortKey)
    c.setNumericMode(True)
    out[f"numeric {loc}"] = c.compare("item10", "item9")
for tz in ("Europe/Berlin", "America/New_York", "Asia/Tokyo", "UTC"):
    z = QTimeZone(QByteArray(tz.encode()))
    t = QDateTime.fromSecsSinceEpoch(1780000000)
    out[f"tz {tz}"] = [z.isValid(), z.offsetFromUtc(t), z.displayName(t, QTimeZone.LongName, QLocale("en_US"))]
    out[f"tz name de_DE {tz}"] = z.displayName(t, QTimeZone.LongName, QLocale("de_DE"))
for enc in ("windows-1252", "Shift_JIS", "GB18030", "ISO-8859-7", "KOI8-R", "Big5", "EUC-KR", "IBM037"):
    d = QStringDecoder(enc)  # PySide6 has no decode(): a valid decoder means ICU opened the converter
    out[f"codec {enc}"] = [d.isValid(), d.name()]
out["codecs available"] = len(QStringDecoder.availableCodecs())
print(json.dumps(out, ensure_ascii=False))
"""


def probe(python: str, preload: Path | None) -> dict:
    env = dict(os.environ, QT_QPA_PLATFORM="offscreen")
    if preload is not None:
        env["LD_PRELOAD"] = str(preload)
    done = subprocess.run([python, "-c", PROBE], env=env, capture_output=True, text=True, timeout=120)
    if done.returncode != 0:
        raise RuntimeError(f"the ICU probe failed: {done.stderr[-2000:]}")
    return json.loads(done.stdout.strip().splitlines()[-1])


#: Results that must not change: English, and what does not depend on a locale's data package. Other
#: locales' collation may fall back to the root order, their time-zone names to English.
def must_match(key: str) -> bool:
    return not key.startswith(("sort ", "numeric ", "tz name ")) or key.endswith("en_US")


def check(lib: Path, python: str) -> list[str]:
    """Differences that matter between the original and the trimmed library (empty: it is safe)."""
    before, after = probe(python, None), probe(python, lib)
    if not any(p.endswith(lib.name) and os.path.samefile(p, lib) for p in after["icudata"] if os.path.exists(p)):
        return [f"the probe did not load the trimmed library: {after['icudata']}"]
    problems = []
    for key, value in before.items():
        if key == "icudata":
            continue
        if after.get(key) != value:
            if must_match(key):
                problems.append(f"{key}: {value!r} → {after.get(key)!r}")
            else:
                print(f"trim_icu: {key} falls back (root order / English names): {after.get(key)!r} (was {value!r})")
    for key in (k for k in after if k.startswith("sort ")):  # collation still works for every locale
        if sorted(after[key]) != sorted(before[key]):
            problems.append(f"{key}: lost words")
    return problems


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("library", type=Path, help="the bundle's libicudata.so.NN (replaced in place)")
    ap.add_argument("--no-check", action="store_true", help="skip the comparison with the original")
    ap.add_argument("--python", default=sys.executable, help="a Python with the same PySide6 as the bundle")
    args = ap.parse_args(argv)
    lib = args.library
    with tempfile.TemporaryDirectory(prefix="parley-icu-") as tmp:
        work = Path(tmp)
        new = work / "out" / lib.name
        new.parent.mkdir()
        info = build(lib, new, work)
        if not args.no_check:
            problems = check(new, args.python)
            if problems:
                print("trim_icu: the trimmed ICU data changes what Qt does; keeping the original:\n  "
                      + "\n  ".join(problems), file=sys.stderr)
                return 1
        mode = lib.stat().st_mode
        shutil.copyfile(new, lib)
        os.chmod(lib, mode)
    print(f"trim_icu: {lib.name}: {info['before_bytes'] / 1e6:.1f} → {info['after_bytes'] / 1e6:.1f} MB "
          f"({info['dropped']} of {info['items']} data items dropped)" + ("" if args.no_check else "; Qt's ICU uses checked"))
    return 0


if __name__ == "__main__":
    sys.exit(main())
