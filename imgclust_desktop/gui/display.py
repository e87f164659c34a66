"""When Qt cannot open a window: one line that says what to install, instead of Qt's abort.

Qt 6 on Linux draws through a platform plugin: "xcb" (X11, and XWayland) or "wayland". Each links
against system libraries that a minimal desktop install may lack (Qt >= 6.5 needs libxcb-cursor0,
which few systems have by default). When no plugin loads, Qt reports through its message handler
and then aborts with a core dump. `explain_platform_failure` wraps the QApplication constructor:
it watches those messages, and on the fatal one prints a single line naming the missing libraries'
packages (Debian/Ubuntu and Fedora) and the offscreen fallback, then exits with status 1.
The README's "Troubleshooting" section lists the same packages.
"""

from __future__ import annotations

import ctypes
import os
import sys
from collections.abc import Callable, Iterator, Mapping, Sequence
from contextlib import contextmanager
from typing import TextIO

# soname -> (Debian/Ubuntu package, Fedora package): what the xcb plugin and Qt's GUI libraries load
XCB_LIBRARIES: dict[str, tuple[str, str]] = {
    "libEGL.so.1": ("libegl1", "libglvnd-egl"),
    "libGL.so.1": ("libgl1", "libglvnd-glx"),
    "libfontconfig.so.1": ("libfontconfig1", "fontconfig"),
    "libdbus-1.so.3": ("libdbus-1-3", "dbus-libs"),
    "libglib-2.0.so.0": ("libglib2.0-0", "glib2"),
    "libxkbcommon.so.0": ("libxkbcommon0", "libxkbcommon"),
    "libxkbcommon-x11.so.0": ("libxkbcommon-x11-0", "libxkbcommon-x11"),
    "libX11.so.6": ("libx11-6", "libX11"),
    "libX11-xcb.so.1": ("libx11-xcb1", "libX11-xcb"),
    "libxcb.so.1": ("libxcb1", "libxcb"),
    "libxcb-cursor.so.0": ("libxcb-cursor0", "xcb-util-cursor"),
    "libxcb-icccm.so.4": ("libxcb-icccm4", "xcb-util-wm"),
    "libxcb-image.so.0": ("libxcb-image0", "xcb-util-image"),
    "libxcb-keysyms.so.1": ("libxcb-keysyms1", "xcb-util-keysyms"),
    "libxcb-randr.so.0": ("libxcb-randr0", "libxcb"),
    "libxcb-render.so.0": ("libxcb-render0", "libxcb"),
    "libxcb-render-util.so.0": ("libxcb-render-util0", "xcb-util-renderutil"),
    "libxcb-shape.so.0": ("libxcb-shape0", "libxcb"),
    "libxcb-shm.so.0": ("libxcb-shm0", "libxcb"),
    "libxcb-sync.so.1": ("libxcb-sync1", "libxcb"),
    "libxcb-util.so.1": ("libxcb-util1", "xcb-util"),
    "libxcb-xfixes.so.0": ("libxcb-xfixes0", "libxcb"),
    "libxcb-xkb.so.1": ("libxcb-xkb1", "libxcb"),
}
# ... and what the wayland plugin loads on top of the GUI libraries
WAYLAND_LIBRARIES: dict[str, tuple[str, str]] = {
    "libwayland-client.so.0": ("libwayland-client0", "libwayland-client"),
    "libwayland-cursor.so.0": ("libwayland-cursor0", "libwayland-cursor"),
    "libwayland-egl.so.1": ("libwayland-egl1", "libwayland-egl"),
    "libxkbcommon.so.0": ("libxkbcommon0", "libxkbcommon"),
}
# what works without a display: the command line, and the window drawn offscreen (a check, not a view)
OFFSCREEN_HINT = (
    "use the imgclust command, or check the app with QT_QPA_PLATFORM=offscreen imgclust-desktop --self-test"
)
FATAL = 3  # QtMsgType.QtFatalMsg


def missing_libraries(sonames: Sequence[str], load: Callable[[str], object] = ctypes.CDLL) -> list[str]:
    """The shared libraries among `sonames` the dynamic loader cannot load here."""
    missing = []
    for soname in sonames:
        try:
            load(soname)
        except OSError:
            missing.append(soname)
    return missing


def packages_for(sonames: Sequence[str], table: Mapping[str, tuple[str, str]]) -> tuple[list[str], list[str]]:
    """(Debian/Ubuntu packages, Fedora packages) that provide `sonames`, each listed once, in order."""
    debian = list(dict.fromkeys(table[s][0] for s in sonames))
    fedora = list(dict.fromkeys(table[s][1] for s in sonames))
    return debian, fedora


def explain(
    qt_messages: Sequence[str],
    environ: Mapping[str, str] = os.environ,
    find_missing: Callable[[Sequence[str]], list[str]] = missing_libraries,
) -> str:
    """The one line to print after Qt found no usable platform plugin, from what Qt said before giving up."""
    said = "\n".join(qt_messages)
    tried_wayland = '"wayland"' in said
    table = {**XCB_LIBRARIES, **(WAYLAND_LIBRARIES if tried_wayland else {})}
    missing = find_missing(list(table))
    prefix = "imgclust-desktop: Qt cannot open a window"
    fallback = f". No display? {OFFSCREEN_HINT} (README: Troubleshooting)"
    if missing:
        debian, fedora = packages_for(missing, table)
        return (
            f"{prefix}: missing {', '.join(missing)}. Install them: "
            f"sudo apt-get install {' '.join(debian)} (Debian/Ubuntu) or "
            f"sudo dnf install {' '.join(fedora)} (Fedora){fallback}"
        )
    platform = environ.get("QT_QPA_PLATFORM")
    if platform and "Could not find the Qt platform plugin" in said:
        return f"{prefix}: QT_QPA_PLATFORM={platform} names no Qt platform plugin; unset it{fallback}"
    if "could not connect to display" in said or not (
        environ.get("DISPLAY") or environ.get("WAYLAND_DISPLAY")
    ):
        where = environ.get("DISPLAY") or environ.get("WAYLAND_DISPLAY")
        reason = (
            f"no display answers at {where}" if where else "no display (DISPLAY and WAYLAND_DISPLAY unset)"
        )
        return f"{prefix}: {reason}. Run it inside a desktop session{fallback}"
    debian, fedora = packages_for(list(table), table)
    return (
        f"{prefix} (Qt: {qt_messages[-1].splitlines()[0] if qt_messages else 'no platform plugin'}). "
        f"The display libraries Qt needs: sudo apt-get install {' '.join(debian)} (Debian/Ubuntu) or "
        f"sudo dnf install {' '.join(fedora)} (Fedora){fallback}"
    )


@contextmanager
def explain_platform_failure(stream: TextIO | None = None) -> Iterator[None]:
    """Around QApplication(...): Qt's fatal "no platform plugin" becomes one line on stderr and exit 1."""
    from PySide6.QtCore import qInstallMessageHandler

    seen: list[str] = []

    def handler(mode, context, message: str) -> None:
        category = getattr(context, "category", None)
        text = f"{category}: {message}" if category and category != "default" else message
        if int(getattr(mode, "value", mode)) != FATAL:
            seen.append(text)
            print(text, file=sys.stderr, flush=True)  # what Qt's own handler would have shown
            return
        if "platform plugin" not in message:
            print(text, file=sys.stderr, flush=True)
            os._exit(1)
        print(explain(seen), file=stream or sys.stderr, flush=True)
        os._exit(1)  # Qt aborts right after a fatal message; leave first, with a status and no core dump

    previous = qInstallMessageHandler(handler)
    try:
        yield
    finally:
        qInstallMessageHandler(previous)
