"""When Qt finds no usable display plugin, the app says in one line what to install, and the README agrees.

The subprocess tests start the real entry point with a platform that cannot work here (an X display
nobody serves; the xcb plugin with libxcb-cursor hidden from the loader) and read what it prints.
"""

from __future__ import annotations

import os
import re
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

from imgclust_desktop.gui import display

ROOT = Path(__file__).resolve().parents[1]
README = (ROOT / "README.md").read_text()
PREFIX = "imgclust-desktop: Qt cannot open a window"
# the libraries of Qt's display plugins that the system must provide (Qt's own and ICU ship in the wheel)
SYSTEM_LIBRARY = re.compile(
    r"^(libxcb|libX11|libxkbcommon|libEGL\.|libGL\.|libfontconfig|libdbus|libglib|libwayland)"
)


def start_window(env: dict[str, str], wrapper: list[str] | None = None) -> subprocess.CompletedProcess:
    base = {k: v for k, v in os.environ.items() if k not in ("QT_QPA_PLATFORM", "DISPLAY", "WAYLAND_DISPLAY")}
    command = [*(wrapper or []), sys.executable, "-m", "imgclust_desktop"]
    return subprocess.run(command, env={**base, **env}, capture_output=True, text=True, timeout=120)


def readme_block(after: str) -> list[str]:
    """Package names of the first code block after the heading line `after` in the README."""
    block = README.split(after, 1)[1].split("```")[1]
    words = block.split()
    return words[words.index("install") + 1 :]


def test_an_x_display_nobody_serves_gives_one_line_and_status_1_not_an_abort():
    result = start_window({"QT_QPA_PLATFORM": "xcb", "DISPLAY": ":187"})
    assert result.returncode == 1, result.stderr  # Qt's own path ends in abort(): -6 and a core dump
    last = result.stderr.strip().splitlines()[-1]
    assert last.startswith(PREFIX) and "no display answers at :187" in last
    assert "QT_QPA_PLATFORM=offscreen imgclust-desktop --self-test" in last


def _can_hide_files() -> bool:
    if not sys.platform.startswith("linux") or os.geteuid() != 0 or not shutil.which("unshare"):
        return False
    return (
        subprocess.run(["unshare", "-m", "--propagation", "private", "true"], capture_output=True).returncode
        == 0
    )


@pytest.mark.skipif(not _can_hide_files(), reason="needs root and mount namespaces to hide a library")
def test_a_missing_libxcb_cursor_is_named_with_its_packages(tmp_path):
    """The fresh-machine failure: Qt >= 6.5's xcb plugin cannot load without libxcb-cursor."""
    # where the loader finds it: "libxcb-cursor.so.0 (libc6,x86-64) => <path>" in its cache
    # ldconfig lives in /sbin, which a non-login PATH may lack
    ldconfig = shutil.which("ldconfig") or next(
        (p for p in ("/sbin/ldconfig", "/usr/sbin/ldconfig") if os.path.exists(p)), None
    )
    if ldconfig is None:
        pytest.skip("no ldconfig to ask where libxcb-cursor is")
    cache = subprocess.run([ldconfig, "-p"], capture_output=True, text=True).stdout
    paths = [line.split("=>")[1].strip() for line in cache.splitlines() if "libxcb-cursor.so.0 " in line]
    if not paths:
        pytest.skip("libxcb-cursor is not installed here, so there is nothing to hide")
    library = paths[0]
    # A private mount namespace: only the child sees an empty file in the library's place.
    hide = [
        "unshare",
        "-m",
        "--propagation",
        "private",
        "sh",
        "-c",
        f'mount --bind /dev/null {library} && exec "$@"',
        "-",
    ]
    result = start_window({"QT_QPA_PLATFORM": "xcb", "DISPLAY": ":187"}, wrapper=hide)
    assert result.returncode == 1, result.stderr
    last = result.stderr.strip().splitlines()[-1]
    assert last.startswith(PREFIX) and "missing libxcb-cursor.so.0" in last, last
    assert "sudo apt-get install libxcb-cursor0 (Debian/Ubuntu)" in last
    assert "sudo dnf install xcb-util-cursor (Fedora)" in last
    assert "QT_QPA_PLATFORM=offscreen" in last


def test_the_line_names_packages_for_whatever_is_missing_wayland_too():
    said = ['qt.qpa.plugin: Could not load the Qt platform plugin "wayland" in "" even though it was found.']
    line = display.explain(
        said, {"WAYLAND_DISPLAY": "wayland-0"}, lambda names: ["libwayland-cursor.so.0", "libxcb-icccm.so.4"]
    )
    assert "\n" not in line
    assert "sudo apt-get install libwayland-cursor0 libxcb-icccm4 (Debian/Ubuntu)" in line
    assert "sudo dnf install libwayland-cursor xcb-util-wm (Fedora)" in line
    nothing_missing = display.explain(
        ['Could not find the Qt platform plugin "vnk"'], {"QT_QPA_PLATFORM": "vnk"}, lambda n: []
    )
    assert "QT_QPA_PLATFORM=vnk names no Qt platform plugin" in nothing_missing
    assert display.missing_libraries(["libc.so.6", "libimgclust-no-such-library.so.7"]) == [
        "libimgclust-no-such-library.so.7"
    ]


def test_the_readme_lists_every_package_the_app_may_ask_for():
    debian = readme_block("Debian / Ubuntu:\n")
    fedora = readme_block("Fedora:\n")
    xcb_debian, xcb_fedora = display.packages_for(list(display.XCB_LIBRARIES), display.XCB_LIBRARIES)
    assert set(xcb_debian) <= set(debian) and "python3-venv" in debian
    assert set(xcb_fedora) <= set(fedora)
    wayland = README.split("### Wayland", 1)[1].split("###", 1)[0]
    wl_debian, wl_fedora = display.packages_for(list(display.WAYLAND_LIBRARIES), display.WAYLAND_LIBRARIES)
    for package in wl_debian + wl_fedora:
        assert package in wayland or package in debian + fedora, package


@pytest.mark.skipif(not shutil.which("ldd"), reason="needs ldd (Linux)")
def test_the_tables_cover_every_system_library_the_qt_display_plugins_link():
    import PySide6

    qt = Path(PySide6.__file__).parent / "Qt"
    binaries = [qt / "plugins" / "platforms" / "libqxcb.so", qt / "plugins" / "platforms" / "libqwayland.so"]
    binaries += sorted((qt / "plugins" / "xcbglintegrations").glob("*.so"))
    binaries = [b for b in binaries if b.exists()]
    if not binaries:
        pytest.skip("this PySide6 has no Linux platform plugins")
    output = subprocess.run(["ldd", *map(str, binaries)], capture_output=True, text=True).stdout
    needed = {line.split()[0] for line in output.splitlines() if "=>" in line}
    system = {name for name in needed if SYSTEM_LIBRARY.match(name)}
    known = set(display.XCB_LIBRARIES) | set(display.WAYLAND_LIBRARIES)
    # libxcb-glx is the GLX integration's (libgl1 pulls it in); the rest must be in the tables
    assert system - known <= {"libxcb-glx.so.0"}, sorted(system - known)
