"""The static report: map picture, montages (medoid first), cluster table, k curve, skipped files."""

from __future__ import annotations

import base64
import io
import re

import numpy as np
from PIL import Image
from test_session import make_real_session

from imgclust_desktop.core import report
from imgclust_desktop.core import session as session_io


def test_save_writes_montages_and_a_self_contained_report(tmp_path):
    s = make_real_session(tmp_path)
    s.rename(2, "<script>alert(1)</script>")
    folder = tmp_path / "session"
    session_io.save(s, folder)
    montages = sorted(p.name for p in (folder / "montages").iterdir())
    assert montages == [f"cluster_{c}.jpg" for c in s.cluster_ids()]
    page = (folder / "report.html").read_text(encoding="utf-8")
    # Every picture is either inlined or a montage inside the session folder.
    sources = re.findall(r'<img[^>]*src="([^"]+)"', page)
    assert any(src.startswith("data:image/png;base64,") for src in sources)
    for src in sources:
        if not src.startswith("data:"):
            assert (folder / src).is_file(), src
    assert "<script>" not in page and "&lt;script&gt;" in page
    assert "<svg" in page and "chosen 3" in page
    assert "not an image: looks like text" in page
    table = page[page.index('id="clusters"') : page.index("</table>", page.index('id="clusters"'))]
    for cid, size in s.sizes().items():
        assert f"<td>{size}</td>" in table and f'"montages/cluster_{cid}.jpg"' in page

    # Merging away a cluster and saving again removes its stale montage.
    s.merge([0, 1], into=0)
    session_io.save(s, folder)
    assert sorted(p.name for p in (folder / "montages").iterdir()) == ["cluster_0.jpg", "cluster_2.jpg"]


def test_montage_starts_with_the_medoid(tmp_path):
    s = make_real_session(tmp_path, per_group=5)
    cid = 1
    sheet = report.montage(s, cid, thumb=32, columns=4, rows=2)
    members = s.members(cid)
    assert members[0] == s.clusters[cid].medoid_index
    assert sheet.size == (4 * 36, 2 * 36)  # 5 members -> 4 columns x 2 rows of 32 px + border
    first_tile = np.asarray(sheet)[4:32, 4:32].astype(float)  # inside the medoid outline
    medoid = np.asarray(Image.open(s.paths[members[0]]).convert("RGB").resize((32, 32)))[2:30, 2:30]
    other_cluster = np.asarray(Image.open(s.paths[int(np.flatnonzero(s.labels == 2)[0])]).convert("RGB"))
    other = np.asarray(Image.fromarray(other_cluster).resize((32, 32)))[2:30, 2:30]
    assert np.abs(first_tile - medoid).mean() < np.abs(first_tile - other).mean()


def test_montage_is_capped_and_skips_excluded_and_missing_files(tmp_path):
    s = make_real_session(tmp_path, groups=2, per_group=12)
    rows = np.flatnonzero(s.labels == 0)
    s.set_excluded(rows[:2], True)
    sheet = report.montage(s, 0, thumb=16, columns=3, rows=2)
    assert sheet.size == (3 * 20, 2 * 20)
    s.paths[int(rows[-1])] = str(tmp_path / "gone.png")  # a file deleted since the run: a blank tile
    report.montage(s, 0, thumb=16)


def test_map_colours_clusters_and_draws_noise_grey(tmp_path):
    s = make_real_session(tmp_path)
    picture = np.asarray(report.map_image(s, size=(300, 200)))
    colours = {tuple(c) for c in picture.reshape(-1, 3).tolist()}
    for cid in s.cluster_ids():
        assert report._rgb(report.cluster_hex(cid)) in colours
    assert report._rgb(report.NOISE_HEX) in colours


def test_k_curve_svg_plots_every_finite_point():
    svg = report.k_curve_svg(
        {"k": [2, 3, 4, 5], "score": [0.1, None, 0.3, 0.2], "criterion": "silhouette", "chosen": 4}
    )
    assert svg.startswith("<svg") and svg.count("<circle") == 3 and "chosen 4" in svg
    assert report.k_curve_svg(None) == "" and report.k_curve_svg({"k": [], "score": []}) == ""


def test_report_of_a_session_without_clusters(tmp_path):
    s = make_real_session(tmp_path)
    s.labels[:] = -1
    html = report.render_html(s)
    b64 = re.search(r"base64,([A-Za-z0-9+/=]+)", html).group(1)
    assert Image.open(io.BytesIO(base64.b64decode(b64))).size == (900, 640)


def test_saving_again_redraws_only_the_montages_whose_pictures_change(tmp_path):
    import os

    s = make_real_session(tmp_path, groups=3, per_group=6)
    edited = s.paths[int(s.members(2)[0])]
    Image.open(edited).convert("RGB").save(edited, compress_level=0)  # its size: its dimensions alone
    folder = tmp_path / "session"
    session_io.save(s, folder)
    montages = folder / "montages"

    def inodes() -> dict[str, int]:  # a montage written again is a new file (temp file + rename)
        return {p.name: p.stat().st_ino for p in montages.iterdir()}

    first = inodes()
    session_io.save(s, folder)
    assert inodes() == first  # nothing changed: nothing drawn again
    # one image of group 2 is edited on disk (same name and size, new pixels, later time); one of group 0
    # is excluded
    size = os.path.getsize(edited)
    Image.new("RGB", (32, 32), (255, 0, 255)).save(edited, compress_level=0)
    assert os.path.getsize(edited) == size
    later = os.stat(edited).st_mtime_ns + 5_000_000_000
    os.utime(edited, ns=(later, later))
    s.set_excluded([int(s.members(0)[-1])], True)
    s.rename(1, "renamed")  # a name is not in the picture
    session_io.save(s, folder)
    now = inodes()
    assert now["cluster_1.jpg"] == first["cluster_1.jpg"]
    assert now["cluster_0.jpg"] != first["cluster_0.jpg"] and now["cluster_2.jpg"] != first["cluster_2.jpg"]
    for cid in s.cluster_ids():  # kept or redrawn, each shows what a fresh drawing shows
        written = np.asarray(Image.open(montages / f"cluster_{cid}.jpg").convert("RGB"))
        buffer = io.BytesIO()
        report.montage(s, cid).save(buffer, "JPEG", quality=85)
        np.testing.assert_array_equal(written, np.asarray(Image.open(buffer).convert("RGB")))
    # a montage without a signature (an older version's, or edited by hand) is drawn again
    Image.new("RGB", (8, 8)).save(montages / "cluster_1.jpg")
    session_io.save(s, folder)
    assert Image.open(montages / "cluster_1.jpg").size == report.montage(s, 1).size
