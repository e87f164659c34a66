#!/bin/sh
# Launcher of the imgclust-desktop bundle (also its AppRun): starts app/imgclust-desktop next to it,
# wherever the folder was unpacked, and passes the arguments on (a folder, a session, --self-test).
here=$(dirname "$(readlink -f "$0")")
exec "$here/app/imgclust-desktop" "$@"
