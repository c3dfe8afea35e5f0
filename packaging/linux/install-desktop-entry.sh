#!/bin/sh
# Add Parley to the desktop's application menu (for this user) from wherever this folder was unpacked:
#   ./install-desktop-entry.sh            install (or update after moving the folder)
#   ./install-desktop-entry.sh --remove   remove the menu entry and icon again
set -eu
here=$(cd "$(dirname "$0")" && pwd)
apps="${XDG_DATA_HOME:-$HOME/.local/share}/applications"
icons="${XDG_DATA_HOME:-$HOME/.local/share}/icons/hicolor"
if [ "${1:-}" = "--remove" ]; then
    rm -f "$apps/parley.desktop" "$icons/256x256/apps/parley.png" "$icons/scalable/apps/parley.svg"
    echo "Parley's menu entry was removed."
    exit 0
fi
mkdir -p "$apps" "$icons/256x256/apps" "$icons/scalable/apps"
sed "s|@PARLEY_DIR@|$here|g" "$here/share/parley.desktop" > "$apps/parley.desktop"
cp "$here/share/parley.png" "$icons/256x256/apps/parley.png"
[ -f "$here/share/parley.svg" ] && cp "$here/share/parley.svg" "$icons/scalable/apps/parley.svg"
command -v update-desktop-database >/dev/null 2>&1 && update-desktop-database -q "$apps" || true
echo "Parley is in the application menu now (it starts $here/parley)."
