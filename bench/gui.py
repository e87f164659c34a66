"""Measure the views offscreen at 100k images: scatter repaints, lasso, thumbnail memory. Prints a table.

Run: QT_QPA_PLATFORM=offscreen .venv/bin/python bench/gui.py [--n 100000]
"""

from __future__ import annotations

import argparse
import os
import statistics
import sys
import tempfile
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "tests"))
os.environ.setdefault("QT_QPA_PLATFORM", "offscreen")

import numpy as np  # noqa: E402
from PySide6.QtWidgets import QApplication  # noqa: E402
from views_support import fill_thumbnail_cache, make_session, thumbnail_jpeg  # noqa: E402

from imgclust_desktop.gui.panels.point_cloud import points_in_polygon  # noqa: E402
from imgclust_desktop.gui.panels.scatter import ScatterPanel  # noqa: E402
from imgclust_desktop.gui.session_model import SessionModel  # noqa: E402
from imgclust_desktop.gui.thumbs import ThumbnailProvider  # noqa: E402


def rss_mb(field: str = "VmRSS") -> float:
    """Resident memory of this process in MiB (VmRSS now, VmHWM peak)."""
    for line in Path("/proc/self/status").read_text().splitlines():
        if line.startswith(field + ":"):
            return int(line.split()[1]) / 1024
    return float("nan")


def pump(app: QApplication, seconds: float) -> None:
    end = time.perf_counter() + seconds
    while time.perf_counter() < end:
        app.processEvents()
        time.sleep(0.002)


def repaint_times(panel: ScatterPanel, app: QApplication, repeats: int) -> list[float]:
    """Milliseconds per synchronous full repaint of the map, nudging the view so nothing is reused."""
    viewport = panel.canvas.viewport()
    times = []
    for k in range(repeats):
        panel.pan_by(0.002 if k % 2 else -0.002, 0.0)
        app.processEvents()
        start = time.perf_counter()
        viewport.repaint()
        times.append((time.perf_counter() - start) * 1000)
    return times


def wait_for_thumbnails(panel: ScatterPanel, app: QApplication, timeout: float = 30.0) -> None:
    """Repaint until every thumbnail the view asks for is decoded (the count stops growing)."""
    end, last, stable = time.perf_counter() + timeout, -1, 0
    while time.perf_counter() < end and stable < 5:
        panel.canvas.viewport().repaint()
        pump(app, 0.1)
        count = len(panel.item.last_drawn_thumbs)
        stable = stable + 1 if count == last else 0
        last = count


def main() -> None:
    if os.environ.get("BENCH_TRACE"):
        import faulthandler

        faulthandler.dump_traceback_later(float(os.environ["BENCH_TRACE"]), exit=True)
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--n", type=int, default=100_000)
    parser.add_argument("--repeats", type=int, default=30)
    parser.add_argument("--no-memory", action="store_true", help="skip the read-every-thumbnail memory part")
    parser.add_argument("--screenshots", type=Path, help="save map-zoomed-out.png / map-zoomed-in.png here")
    args = parser.parse_args()
    app = QApplication.instance() or QApplication(sys.argv)
    rows: list[tuple[str, str, str]] = []
    rss_start = rss_mb()

    t = time.perf_counter()
    session = make_session(args.n, 30, seed=0)
    cache_dir = Path(tempfile.mkdtemp(prefix="imgclust-bench-"))
    keys, cache = fill_thumbnail_cache(session, cache_dir, distinct=100)
    print(
        f"setup: {args.n:,} images, thumbnail cache filled in {time.perf_counter() - t:.1f} s",
        file=sys.stderr,
    )

    model = SessionModel()
    provider = ThumbnailProvider(keys, cache)
    t = time.perf_counter()
    model.set_session(session, provider)
    panel = ScatterPanel(model)
    panel.resize(1400, 900)
    panel.show()
    pump(app, 0.2)
    rows.append(
        (
            "open a session in the map (prepare data, first fit)",
            f"{(time.perf_counter() - t) * 1000:.0f} ms",
            "-",
        )
    )

    zoomed_out = repaint_times(panel, app, args.repeats)
    drawn = panel.item.last_drawn_points
    if args.screenshots:
        args.screenshots.mkdir(parents=True, exist_ok=True)
        panel.grab().save(str(args.screenshots / "map-zoomed-out.png"))
    raster = ", as a raster" if panel.item.last_drawn_raster else ""
    rows.append((f"full repaint, zoomed out ({drawn:,} points drawn{raster})", f"{statistics.median(zoomed_out):.1f} ms median "
                 f"(p90 {np.percentile(zoomed_out, 90):.1f})", "<= 50 ms"))  # fmt: skip

    # zoom in on the densest cluster until about 200 thumbnails are on screen
    biggest = int(np.bincount(session.labels[session.labels >= 0]).argmax())
    panel.zoom_to_cluster(biggest)
    for _ in range(40):
        wait_for_thumbnails(panel, app, timeout=10)
        count = len(panel.item.last_drawn_thumbs)
        if 170 <= count <= 260:
            break
        # no thumbnails yet (too small) or too many small ones: zoom in; too few large ones: back off a bit
        panel.zoom_by(0.9 if count == 0 or count > 260 else 1.05)
    wait_for_thumbnails(panel, app)
    zoomed_in = repaint_times(panel, app, args.repeats)
    thumbs = len(panel.item.last_drawn_thumbs)
    if args.screenshots:
        panel.grab().save(str(args.screenshots / "map-zoomed-in.png"))
    rows.append((f"full repaint, zoomed in ({thumbs} thumbnails + {panel.item.last_drawn_points:,} dots)",
                 f"{statistics.median(zoomed_in):.1f} ms median (p90 {np.percentile(zoomed_in, 90):.1f})", "<= 50 ms"))  # fmt: skip

    # a freehand lasso of 400 vertices around a third of the map, through the panel (selection + redraw flag)
    panel.fit_all()
    rng = np.random.default_rng(0)
    centre = session.coords.mean(axis=0)
    spread = session.coords.std(axis=0).mean() * 1.5
    angles = np.linspace(0, 2 * np.pi, 400, endpoint=False)
    radius = spread * (0.7 + 0.3 * np.sin(5 * angles) + 0.05 * rng.random(400))
    polygon = np.c_[centre[0] + radius * np.cos(angles), centre[1] + radius * np.sin(angles)]
    lasso = []
    for _ in range(10):
        model.select([], "replace")
        start = time.perf_counter()
        selected = panel.select_polygon(polygon, "replace")
        lasso.append((time.perf_counter() - start) * 1000)
    core = []
    for _ in range(10):
        start = time.perf_counter()
        points_in_polygon(panel.item.coords, polygon)
        core.append((time.perf_counter() - start) * 1000)
    rows.append((f"lasso over {args.n:,} points, 400 vertices ({len(selected):,} selected)",
                 f"{statistics.median(lasso):.1f} ms median (point-in-polygon alone {statistics.median(core):.1f})",
                 "<= 100 ms"))  # fmt: skip
    model.select([], "replace")
    if args.no_memory:
        print("| measurement | result | target |\n|---|---|---|")
        for name, value, target in rows:
            print(f"| {name} | {value} | {target} |")
        provider.close()
        return

    # memory: ask for every thumbnail once (as scrolling through everything would), then feed all by put()
    panel.hide()
    before = rss_mb()
    seen: set[int] = set()
    provider.ready.connect(seen.add)
    t = time.perf_counter()
    for start in range(0, args.n, 2000):
        # already decoded ones answer at once; the rest arrive through ready()
        waiting = {i for i in range(start, min(start + 2000, args.n)) if provider.get(i) is None}
        seen.update(set(range(start, min(start + 2000, args.n))) - waiting)
        deadline = time.perf_counter() + 60
        while not waiting <= seen and time.perf_counter() < deadline:
            pump(app, 0.01)
    load_s = time.perf_counter() - t
    after_get = rss_mb()
    stats = provider.stats()
    rows.append((f"thumbnails: all {args.n:,} read+decoded via get() ({load_s:.1f} s, {len(seen) / load_s:,.0f}/s)",
                 f"RSS +{after_get - before:.0f} MiB; {stats['images']:,} decoded kept "
                 f"({stats['image_bytes'] / 2**20:.0f} MiB LRU)", "<= 2 GB"))  # fmt: skip
    jpeg_variants = [thumbnail_jpeg(i % 30, i) for i in range(300)]
    for i in range(args.n):
        provider.put(i, bytes(bytearray(jpeg_variants[i % 300])))  # distinct objects, as the pipeline sends
    pump(app, 1.0)
    stats = provider.stats()
    rows.append((f"thumbnails: all {args.n:,} handed over by put()",
                 f"RSS +{rss_mb() - before:.0f} MiB; JPEG LRU {stats['jpegs']:,} kept ({stats['jpeg_bytes'] / 2**20:.0f} MiB)",
                 "<= 2 GB"))  # fmt: skip
    rows.append(
        (
            "process memory, whole benchmark",
            f"peak RSS {rss_mb('VmHWM'):.0f} MiB (start {rss_start:.0f})",
            "-",
        )
    )
    provider.close()

    print("| measurement | result | target |")
    print("|---|---|---|")
    for name, value, target in rows:
        print(f"| {name} | {value} | {target} |")


if __name__ == "__main__":
    main()
