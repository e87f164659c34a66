"""clusters.csv and hierarchy.csv as session_tables renders them: the bytes csv.writer writes, parsed back."""

from __future__ import annotations

import csv
import io

import numpy as np
import pytest
from test_tree import make_tree, two_scale_blobs

from imgclust_desktop.core.row_cache import Rows
from imgclust_desktop.core.session_tables import (
    CSV_COLUMNS,
    TableError,
    clusters_csv,
    hierarchy_csv,
    number_text,
    parse_clusters_csv,
    parse_hierarchy_leaves,
)

ODD_PATHS = [
    "/photos/plain.jpg",
    "/photos/Paris, 2019/eiffel.jpg",  # a comma: quoted
    '/photos/the "best" one.png',  # quotes: quoted, doubled
    "/photos/line\nbreak.jpg",
    "/photos/carriage\rreturn.jpg",
    "/photos/été/ünïcødé 写真.jpg",
    "/photos/ leading and trailing space .jpg",
    "/photos/semi;colon|pipe\ttab.jpg",
]


def odd_rows(paths: list[str], seed: int = 0) -> Rows:
    rng = np.random.default_rng(seed)
    n = len(paths)
    coords = rng.normal(size=(n, 2)).astype(np.float32)
    coords[0] = [0.0, -0.0]  # signed zero keeps its sign, as repr writes it
    outlier = rng.random(n).astype(np.float32)
    outlier[1] = np.nan
    return Rows(list(paths), rng.integers(-1, 5, n), coords, outlier, rng.integers(-1, 3, n))


def csv_writer_bytes(header: list[str], rows: list[list]) -> bytes:
    """What csv.writer writes for these rows into a file opened with newline="" (the format before)."""
    buffer = io.StringIO(newline="")
    writer = csv.writer(buffer)
    writer.writerow(header)
    writer.writerows(rows)
    return buffer.getvalue().encode("utf-8")


def test_clusters_csv_is_byte_for_byte_what_csv_writer_writes_even_for_odd_paths():
    rows = odd_rows(ODD_PATHS)
    is_medoid = np.zeros(len(ODD_PATHS), np.int64)
    is_medoid[[2, 5]] = 1
    coords = rows.coords.astype(np.float64)
    expected = csv_writer_bytes(
        CSV_COLUMNS,
        [
            [p, int(c), repr(float(x)), repr(float(y)), repr(float(o)), int(m), int(d)]
            for p, c, x, y, o, m, d in zip(
                rows.paths, rows.labels, coords[:, 0], coords[:, 1], rows.outlier_score.astype(np.float64),
                is_medoid, rows.duplicate_group, strict=True,
            )
        ],
    )  # fmt: skip
    written = clusters_csv(rows, is_medoid, number_text(rows)).encode("utf-8")
    assert written == expected
    back = parse_clusters_csv(written)
    assert back.paths == rows.paths
    for name in ("labels", "coords", "outlier_score", "duplicate_group"):
        np.testing.assert_array_equal(getattr(back, name), getattr(rows, name), err_msg=name)
        assert getattr(back, name).dtype == getattr(rows, name).dtype, name
    assert np.signbit(back.coords[0, 1]) and np.isnan(back.outlier_score[1])


def test_an_empty_table_is_just_its_header():
    none = np.zeros(0, np.int64)
    rows = Rows([], none, np.zeros((0, 2), np.float32), np.zeros(0, np.float32), none)
    written = clusters_csv(rows, np.zeros(0, np.int64), number_text(rows)).encode()
    assert written == csv_writer_bytes(CSV_COLUMNS, [])
    assert parse_clusters_csv(written).paths == []


def test_hierarchy_csv_is_what_csv_writer_writes_and_its_finest_column_is_the_leaves():
    points, _, _ = two_scale_blobs(themes=3, kinds=3, per_kind=5, seed=1)
    tree = make_tree(points, k=3)
    paths = [ODD_PATHS[i % len(ODD_PATHS)] + str(i) for i in range(len(points))]
    written = hierarchy_csv(paths, tree).encode("utf-8")
    header = ["path", *[f"k{k}" for k in tree.levels]]
    columns = [tree.cut(k) for k in tree.levels]
    expected = csv_writer_bytes(header, [[p, *(int(c[i]) for c in columns)] for i, p in enumerate(paths)])
    assert written == expected
    leaves = parse_hierarchy_leaves(written, tree.n_leaves, paths)
    np.testing.assert_array_equal(leaves, tree.cut(tree.n_leaves))
    with pytest.raises(TableError, match="same order"):
        parse_hierarchy_leaves(written, tree.n_leaves, paths[::-1])
    with pytest.raises(TableError, match="no k"):
        parse_hierarchy_leaves(written, tree.n_leaves + 1, paths)


def test_a_damaged_table_says_what_is_wrong():
    with pytest.raises(TableError, match="unexpected header"):
        parse_clusters_csv(b"path,cluster\r\n/a,1\r\n")
    with pytest.raises(TableError, match="line 2 has 3 fields"):
        parse_clusters_csv((",".join(CSV_COLUMNS) + "\r\n/a,1,2\r\n").encode())
    with pytest.raises(TableError, match="cannot read"):
        parse_clusters_csv(b"\xff\xfe not utf-8")
    with pytest.raises(ValueError):
        parse_clusters_csv((",".join(CSV_COLUMNS) + "\r\n/a,seven,0.0,0.0,0.0,0,-1\r\n").encode())
