"""The map panel at 1M points without a thumbnail cache: open, zoomed-out repaint, lasso (CPU and wall).

QT_QPA_PLATFORM=offscreen .venv/bin/python bench/map_1m.py
"""

import cProfile
import os
import pstats
import sys
import time

os.environ["QT_QPA_PLATFORM"] = "offscreen"
sys.path.insert(0, os.path.join(os.path.dirname(__file__), "..", "tests"))
import numpy as np
from PySide6.QtWidgets import QApplication

app = QApplication([])
from imgclust_desktop.core.session import Session  # noqa: E402
from imgclust_desktop.gui.panels.scatter import ScatterPanel  # noqa: E402
from imgclust_desktop.gui.session_model import SessionModel  # noqa: E402

n = 1_000_000
rng = np.random.default_rng(0)
labels = rng.integers(0, 30, n)
centres = rng.uniform(-10, 10, (30, 2))
coords = (centres[labels] + rng.normal(0, 1.5, (n, 2))).astype(np.float32)
s = Session(
    paths=[f"/x/{i}.png" for i in range(n)],
    features=np.zeros((n, 4), np.float32),
    coords=coords,
    labels=labels,
)
m = SessionModel()

w0 = ScatterPanel(SessionModel())
del w0
t = time.process_time()
tw = time.perf_counter()
m.set_session(s, None)
p = ScatterPanel(m)
p.resize(1400, 900)
p.show()
app.processEvents()
print("open cpu", time.process_time() - t, "wall", time.perf_counter() - tw)
t = time.process_time()
tw = time.perf_counter()
p.canvas.viewport().repaint()
print("repaint cpu", time.process_time() - t, "wall", time.perf_counter() - tw, p.item.last_drawn_raster)
centre = coords.mean(0)
ang = np.linspace(0, 2 * np.pi, 400, endpoint=False)
r = coords.std(0).mean() * 1.5 * (0.7 + 0.3 * np.sin(5 * ang))
poly = np.c_[centre[0] + r * np.cos(ang), centre[1] + r * np.sin(ang)]
p.set_tool("lasso")  # as a person picks the tool before drawing (it imports what the lasso needs)
t, tw = time.process_time(), time.perf_counter()
p.select_polygon(poly, "replace")
print("first lasso, no profiler: cpu", time.process_time() - t, "wall", time.perf_counter() - tw)
pr = cProfile.Profile()
pr.enable()
t = time.process_time()
tw = time.perf_counter()
p.select_polygon(poly, "replace")
print("lasso under cProfile: cpu", time.process_time() - t, "wall", time.perf_counter() - tw)
pr.disable()
pstats.Stats(pr).sort_stats("tottime").print_stats(8)
for turn in (1, 2, 3):  # more lassos, no profiler
    spun = ang + turn * 0.4
    poly = np.c_[centre[0] + r * np.cos(spun), centre[1] + r * np.sin(spun)]
    t, tw = time.process_time(), time.perf_counter()
    p.select_polygon(poly, "replace")
    cpu, wall = time.process_time() - t, time.perf_counter() - tw
    print(f"lasso {turn + 1} cpu {cpu:.3f} wall {wall:.3f}, {len(p.model.selection)} selected")
pr = cProfile.Profile()
pr.enable()
p.pan_by(0.002, 0)
app.processEvents()
t = time.process_time()
p.canvas.viewport().repaint()
print("repaint sel cpu", time.process_time() - t)
pr.disable()
pstats.Stats(pr).sort_stats("tottime").print_stats(6)
pr = cProfile.Profile()
pr.enable()
t = time.process_time()
m.set_session(s, None)
app.processEvents()
print("reopen cpu", time.process_time() - t)
pr.disable()
pstats.Stats(pr).sort_stats("tottime").print_stats(10)
