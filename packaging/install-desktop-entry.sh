#!/bin/sh
# Add imgclust to the desktop's application menu for this user (no root needed), pointing at this
# unpacked folder; `install-desktop-entry.sh --uninstall` removes the entry and the icon again.
set -eu
here=$(dirname "$(readlink -f "$0")")
data=${XDG_DATA_HOME:-$HOME/.local/share}
entry=$data/applications/imgclust-desktop.desktop
icon=$data/icons/hicolor/256x256/apps/imgclust.png
if [ "${1:-}" = "--uninstall" ]; then
    rm -f "$entry" "$icon"
    echo "removed $entry"
    exit 0
fi
mkdir -p "$(dirname "$entry")" "$(dirname "$icon")"
cp "$here/imgclust.png" "$icon"
# Exec needs the launcher's absolute path (quoted: the folder may contain spaces).
sed "s|^Exec=.*|Exec=\"$here/imgclust-desktop\" %f|" "$here/imgclust-desktop.desktop" >"$entry"
command -v update-desktop-database >/dev/null 2>&1 && update-desktop-database "$data/applications" || true
echo "installed $entry (launcher: $here/imgclust-desktop)"
