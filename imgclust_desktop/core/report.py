"""The static report of a session: map picture, per-cluster montages, tables, auto-k curve (PIL + SVG).

report.html is one self-contained page: the map is inlined as a base64 PNG, the k curve as inline SVG,
and the montages are referenced relative to the session folder (montages/cluster_<id>.jpg).
"""

from __future__ import annotations

import base64
import hashlib
import html
import io
import os
from collections.abc import Sequence
from pathlib import Path
from typing import TYPE_CHECKING, Any, Protocol

import numpy as np

from .atomic import atomic_write_bytes
from .cosine import cosine_silhouettes, feature_rows
from .decode import fit_long_edge
from .palette import NOISE_HEX, PALETTE_HEX
from .sources import Skipped

if TYPE_CHECKING:
    from PIL import Image as PILImage

MONTAGE_COLUMNS, MONTAGE_ROWS, MONTAGE_THUMB = 20, 10, 64


class ReportSource(Protocol):
    """What the report reads: the fields and queries of a session (core.session.Session has them all).

    Spelled out here, not imported, so that session.py can call the report without the report
    importing session.py back.
    """

    paths: list[str]
    features: np.ndarray
    coords: np.ndarray
    labels: np.ndarray
    outlier_score: np.ndarray
    excluded: np.ndarray
    clusters: dict[int, Any]  # id -> ClusterInfo (.medoid_index)
    model_id: str
    inputs: list[str]
    params: dict
    timings: dict[str, float]
    scores: dict
    k_curve: dict | None
    skipped: list[Skipped]

    def name_of(self, cluster_id: int) -> str: ...
    def sizes(self) -> dict[int, int]: ...
    def cluster_ids(self) -> list[int]: ...
    def members(self, cluster_id: int) -> np.ndarray: ...


def cluster_hex(cluster_id: int) -> str:
    """Colour of a cluster id as #rrggbb (noise grey)."""
    return NOISE_HEX if cluster_id < 0 else PALETTE_HEX[cluster_id % len(PALETTE_HEX)]


def _rgb(hex_colour: str) -> tuple[int, int, int]:
    return int(hex_colour[1:3], 16), int(hex_colour[3:5], 16), int(hex_colour[5:7], 16)


def map_image(session: ReportSource, size: tuple[int, int] = (900, 640), radius: int = 3) -> PILImage.Image:
    """The 2-D map drawn with PIL: one dot per image coloured by cluster, noise grey and underneath."""
    from PIL import Image, ImageDraw

    width, height = size
    image = Image.new("RGB", size, "white")
    draw = ImageDraw.Draw(image)
    coords = np.asarray(session.coords, dtype=np.float64)
    if coords.size == 0:
        return image
    finite = np.isfinite(coords).all(axis=1)
    low, high = coords[finite].min(axis=0), coords[finite].max(axis=0)
    span = np.where(high - low > 0, high - low, 1.0)
    margin = 12 + radius
    xy = (coords - low) / span
    px = margin + xy[:, 0] * (width - 2 * margin)
    py = height - margin - xy[:, 1] * (height - 2 * margin)  # y up, like the map in the window
    labels = session.labels
    # Noise first so cluster dots stay visible on top of it.
    order = np.argsort(labels >= 0, kind="stable")
    for i in order:
        if not finite[i]:
            continue
        colour = _rgb(cluster_hex(int(labels[i])))
        x, y = px[i], py[i]
        draw.ellipse((x - radius, y - radius, x + radius, y + radius), fill=colour)
    return image


def load_thumbnails(session: ReportSource, rows: Sequence[int], size: int = 128) -> dict[int, PILImage.Image]:
    """Thumbnails for rows: from the thumbnail cache when present, else decoded from the file."""
    from PIL import Image

    result: dict[int, Image.Image] = {}
    keys = _cache_keys(session, rows)
    cached: dict[str, bytes] = {}
    if keys and session.params.get("cache", True) is not False:
        try:
            from .cache import ThumbnailCache

            cache_dir = session.params.get("cache_dir")
            cache = ThumbnailCache(Path(cache_dir) if cache_dir else None)
            cached = cache.get_many([k for k in keys.values() if k], size)
            cache.close()
        except Exception:  # a broken or read-only cache only costs speed: decode the files instead
            cached = {}
    for row in rows:
        jpeg = cached.get(keys.get(row, ""))
        try:
            if jpeg is not None:
                result[row] = Image.open(io.BytesIO(jpeg)).convert("RGB")
                continue
            from .decode import decode

            result[row] = Image.fromarray(decode(session.paths[row], max_side=size, thumb_sizes=()).image)
        except Exception:  # a file gone or unreadable since the run: leave a blank tile
            continue
    return result


def _cache_keys(session: ReportSource, rows: Sequence[int]) -> dict[int, str]:
    from .sources import FileIdentity

    keys = {}
    for row in rows:
        try:
            st = os.stat(session.paths[row])
        except OSError:
            continue
        keys[row] = FileIdentity(session.paths[row], st.st_size, st.st_mtime_ns).key()
    return keys


def montage_members(
    session: ReportSource, cluster_id: int, count: int = MONTAGE_COLUMNS * MONTAGE_ROWS
) -> list[int]:
    """The rows a montage of this cluster shows: medoid first, most typical next, excluded ones left out."""
    return [int(r) for r in session.members(cluster_id) if not session.excluded[r]][:count]


def montage(
    session: ReportSource,
    cluster_id: int,
    *,
    columns: int = MONTAGE_COLUMNS,
    rows: int = MONTAGE_ROWS,
    thumb: int = MONTAGE_THUMB,
    members: Sequence[int] | None = None,
) -> PILImage.Image:
    """A grid of up to rows x columns thumbnails of one cluster, medoid first (outlined), most typical next.
    members: montage_members(session, cluster_id, columns * rows), when the caller has them."""
    from PIL import Image, ImageDraw

    if members is None:
        members = montage_members(session, cluster_id, columns * rows)
    members = [int(r) for r in members][: columns * rows]
    n_cols = max(1, min(columns, len(members)))
    n_rows = max(1, -(-len(members) // n_cols))
    cell = thumb + 4
    sheet = Image.new("RGB", (n_cols * cell, n_rows * cell), (235, 235, 235))
    thumbs = load_thumbnails(session, members, size=128)  # the cache holds 128 and 256
    draw = ImageDraw.Draw(sheet)
    for slot, row in enumerate(members):
        x0, y0 = (slot % n_cols) * cell + 2, (slot // n_cols) * cell + 2
        image = thumbs.get(row)
        if image is None:
            draw.rectangle((x0, y0, x0 + thumb - 1, y0 + thumb - 1), fill=(200, 200, 200))
            continue
        # fitted to the tile both ways: thumbnails of small sources (28 px) are stored at their own size
        image = fit_long_edge(image, thumb)
        sheet.paste(image, (x0 + (thumb - image.width) // 2, y0 + (thumb - image.height) // 2))
    if members:
        draw.rectangle((0, 0, cell - 1, cell - 1), outline=_rgb(cluster_hex(cluster_id)), width=2)
    return sheet


def montage_signature(session: ReportSource, cluster_id: int, members: Sequence[int]) -> str:
    """What a montage shows, as one string: its layout and colour, and each image's path, size and
    modification time in order (its thumbnail-cache key; "" for a file gone, a blank tile)."""
    keys = _cache_keys(session, [int(row) for row in members])
    shown = [keys.get(int(row), "") for row in members]
    layout = (MONTAGE_COLUMNS, MONTAGE_ROWS, MONTAGE_THUMB, cluster_hex(cluster_id))
    digest = hashlib.sha256(repr((layout, shown)).encode("utf-8", "surrogatepass")).hexdigest()
    return f"imgclust montage 1 {digest}"


def _written_signature(path: Path) -> str | None:
    """The signature a montage was written with (its JPEG comment; the header only is read), else None."""
    from PIL import Image

    try:
        with Image.open(path) as image:
            comment = image.info.get("comment")
    except (OSError, ValueError):
        return None
    return comment.decode("utf-8", "replace") if isinstance(comment, bytes) else None


def k_curve_svg(k_curve: dict | None, width: int = 420, height: int = 220) -> str:
    """The auto-k criterion per k as a small inline SVG line chart ("" when there is no curve)."""
    if not k_curve or not k_curve.get("k"):
        return ""
    ks = [float(k) for k in k_curve["k"]]
    scores = [float("nan") if s is None else float(s) for s in k_curve.get("score", [])]
    pairs = [(k, s) for k, s in zip(ks, scores, strict=False) if np.isfinite(s)]
    if not pairs:
        return ""
    left, right, top, bottom = 48, 12, 14, 34
    k_lo, k_hi = min(p[0] for p in pairs), max(p[0] for p in pairs)
    s_lo, s_hi = min(p[1] for p in pairs), max(p[1] for p in pairs)
    k_span, s_span = (k_hi - k_lo) or 1.0, (s_hi - s_lo) or 1.0

    def point(k: float, s: float) -> tuple[float, float]:
        x = left + (k - k_lo) / k_span * (width - left - right)
        y = top + (1 - (s - s_lo) / s_span) * (height - top - bottom)
        return round(x, 1), round(y, 1)

    line = " ".join(f"{x},{y}" for x, y in (point(k, s) for k, s in pairs))
    parts = [
        f'<svg xmlns="http://www.w3.org/2000/svg" width="{width}" height="{height}" class="kcurve">',
        f'<rect x="0" y="0" width="{width}" height="{height}" fill="white"/>',
        f'<line x1="{left}" y1="{height - bottom}" x2="{width - right}" y2="{height - bottom}" stroke="#888"/>',
        f'<line x1="{left}" y1="{top}" x2="{left}" y2="{height - bottom}" stroke="#888"/>',
        f'<polyline points="{line}" fill="none" stroke="#1f77b4" stroke-width="2"/>',
    ]
    for k, s in pairs:
        x, y = point(k, s)
        parts.append(f'<circle cx="{x}" cy="{y}" r="2.5" fill="#1f77b4"/>')
        parts.append(
            f'<text x="{x}" y="{height - bottom + 14}" font-size="10" text-anchor="middle">{k:g}</text>'
        )
    chosen = k_curve.get("chosen")
    if chosen is not None and k_lo <= float(chosen) <= k_hi:
        x, _ = point(float(chosen), s_lo)
        parts.append(
            f'<line x1="{x}" y1="{top}" x2="{x}" y2="{height - bottom}" stroke="#d62728" stroke-dasharray="4 3"/>'
        )
    parts.append(f'<text x="{left - 4}" y="{top + 8}" font-size="10" text-anchor="end">{s_hi:.3g}</text>')
    parts.append(
        f'<text x="{left - 4}" y="{height - bottom}" font-size="10" text-anchor="end">{s_lo:.3g}</text>'
    )
    criterion = html.escape(str(k_curve.get("criterion", "score")))
    parts.append(
        f'<text x="{(left + width) / 2}" y="{height - 4}" font-size="11" text-anchor="middle">k ({criterion}; chosen {chosen})</text>'
    )
    parts.append("</svg>")
    return "\n".join(parts)


def cluster_silhouettes(session: ReportSource, max_rows: int = 3000, seed: int = 0) -> dict[int, float]:
    """Mean silhouette per cluster in feature space (cosine), on a sample for large sessions."""
    labels = session.labels
    rows = np.flatnonzero(labels >= 0)
    if np.unique(labels[rows]).size < 2 or session.features.shape[0] != len(labels):
        return {}
    if rows.size > max_rows:
        rows = np.sort(np.random.default_rng(seed).choice(rows, max_rows, replace=False))
    if np.unique(labels[rows]).size < 2:
        return {}
    values = cosine_silhouettes(feature_rows(session.features, rows), labels[rows])
    ids, where = np.unique(labels[rows], return_inverse=True)
    means = np.bincount(where.ravel(), weights=values) / np.bincount(where.ravel())
    return dict(zip(ids.tolist(), means.tolist(), strict=True))


def write_report(session: ReportSource, folder: Path) -> Path:
    """Write montages/cluster_<id>.jpg for every non-empty cluster and report.html; returns the page path."""
    folder = Path(folder)
    montage_dir = folder / "montages"
    montage_dir.mkdir(exist_ok=True)
    ids = session.cluster_ids()
    for cid in ids:
        # A montage whose picture would not change (the same images, in the same order, each file the same
        # size and modification time, the same colour and layout) is left as it is: saving after an update
        # or a re-cut redraws only the clusters that changed. The signature travels in the JPEG's comment,
        # so a montage and what it shows are always written together.
        members = montage_members(session, cid)
        signature = montage_signature(session, cid, members)
        target = montage_dir / f"cluster_{cid}.jpg"
        if _written_signature(target) == signature:
            continue
        buffer = io.BytesIO()
        montage(session, cid, members=members).save(buffer, "JPEG", quality=85, comment=signature.encode())
        atomic_write_bytes(target, buffer.getvalue())
    # Montages of clusters that no longer exist (merged away since the last save) would mislead.
    wanted = {f"cluster_{cid}.jpg" for cid in ids}
    for stale in montage_dir.glob("cluster_*.jpg"):
        if stale.name not in wanted:
            stale.unlink(missing_ok=True)
    page = folder / "report.html"
    atomic_write_bytes(page, render_html(session).encode("utf-8"))
    return page


def render_html(session: ReportSource) -> str:
    """The report page as one HTML string (montages referenced as montages/cluster_<id>.jpg)."""
    esc = html.escape
    buffer = io.BytesIO()
    map_image(session).save(buffer, "PNG", optimize=True)
    map_b64 = base64.b64encode(buffer.getvalue()).decode("ascii")
    sizes = session.sizes()
    silhouettes = cluster_silhouettes(session)
    n = len(session.paths)
    noise = int(np.sum(session.labels < 0))
    rows = []
    for cid in sorted(sizes):
        info = session.clusters.get(cid)
        members = session.labels == cid
        medoid = info.medoid_index if info else None
        rows.append(
            "<tr>"
            f'<td><span class="sw" style="background:{cluster_hex(cid)}"></span>{cid}</td>'
            f"<td>{esc(session.name_of(cid))}</td><td>{sizes[cid]}</td>"
            f"<td>{sizes[cid] / max(n, 1):.1%}</td>"
            f"<td>{_fmt(silhouettes.get(cid))}</td>"
            f"<td>{_fmt(float(np.mean(session.outlier_score[members])))}</td>"
            f"<td>{int(np.sum(session.excluded & members))}</td>"
            f"<td>{esc(os.path.basename(session.paths[medoid])) if medoid is not None else ''}</td>"
            "</tr>"
        )
    montages = "\n".join(
        f'<section><h3><span class="sw" style="background:{cluster_hex(cid)}"></span>'
        f"{esc(session.name_of(cid))} <small>(id {cid}, {sizes[cid]} images)</small></h3>"
        f'<img src="montages/cluster_{cid}.jpg" alt="montage of cluster {cid}"></section>'
        for cid in sorted(sizes)
    )
    scores = "".join(f"<tr><td>{esc(str(k))}</td><td>{_fmt(v)}</td></tr>" for k, v in session.scores.items())
    timings = "".join(
        f"<tr><td>{esc(str(k))}</td><td>{_fmt(v)} s</td></tr>" for k, v in session.timings.items()
    )
    params = "".join(
        f"<tr><td>{esc(str(k))}</td><td>{esc(str(v))}</td></tr>" for k, v in session.params.items()
    )
    skipped = "".join(f"<tr><td>{esc(s.path)}</td><td>{esc(s.reason)}</td></tr>" for s in session.skipped)
    curve = k_curve_svg(session.k_curve)
    return f"""<!DOCTYPE html>
<html lang="en"><head><meta charset="utf-8"><title>imgclust report</title>
<style>
body {{ font-family: system-ui, sans-serif; margin: 2em; color: #222; }}
table {{ border-collapse: collapse; margin: 0.5em 0 1.5em; }}
td, th {{ border: 1px solid #ccc; padding: 3px 8px; text-align: left; }}
.sw {{ display: inline-block; width: 0.9em; height: 0.9em; margin-right: 0.4em; border-radius: 2px; }}
section img {{ max-width: 100%; }}
</style></head><body>
<h1>Image clusters</h1>
<p>{n} images, {len(sizes)} clusters, {noise} unclustered (noise, grey), {len(session.skipped)} files skipped.
Model <code>{esc(session.model_id)}</code>. Inputs: {esc(", ".join(session.inputs))}</p>
<h2>Map</h2>
<img alt="2-D map of the images coloured by cluster" src="data:image/png;base64,{map_b64}">
<h2>Clusters</h2>
<table id="clusters"><tr><th>id</th><th>name</th><th>images</th><th>share</th><th>silhouette</th>
<th>mean outlier score</th><th>excluded</th><th>medoid</th></tr>
{"".join(rows)}</table>
<h2>Scores</h2><table id="scores">{scores}</table>
{"<h2>Choice of k</h2>" + curve if curve else ""}
<h2>Montages</h2>
<p>Most typical image (medoid) first, outlined; then by similarity to it.</p>
{montages}
<h2>Skipped files ({len(session.skipped)})</h2>
<table id="skipped"><tr><th>file</th><th>reason</th></tr>{skipped}</table>
<h2>Parameters</h2><table id="params">{params}</table>
<h2>Timings</h2><table id="timings">{timings}</table>
</body></html>
"""


def _fmt(value: object) -> str:
    if isinstance(value, (float, np.floating)):
        return f"{float(value):.4g}" if np.isfinite(value) else "–"
    return "–" if value is None else html.escape(str(value))
