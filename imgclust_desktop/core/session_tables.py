"""The session folder's two tables, clusters.csv and hierarchy.csv: rendered to bytes and parsed back.

They are rendered whole (not streamed through a file) so the writer can record their digest in rows.npz
(see row_cache.py), and parsed from the bytes the loader already read to check that digest. The bytes
are exactly what csv.writer writes (minimal quoting, CRLF line ends, floats as repr); a test holds the two
side by side.
"""

from __future__ import annotations

import csv
import io
import itertools
from collections.abc import Sequence

import numpy as np

from .row_cache import Rows
from .tree import ClusterTree

CSV_COLUMNS = ["path", "cluster", "x", "y", "outlier_score", "is_medoid", "duplicate_group"]
_NEEDS_QUOTES = (",", '"', "\r", "\n")  # csv.QUOTE_MINIMAL quotes a field holding any of these


class TableError(ValueError):
    """A table that cannot be read; str(e) says which and why, in words."""


def number_text(rows: Rows) -> list[str]:
    """Each row's "x,y,outlier_score" as clusters.csv writes them: repr of the float64 values. The slow
    part of writing the table (300,000 floats at 100k images), and the part a re-cut does not change, so
    rows.npz keeps it for the next save (row_cache.read_number_text)."""
    coords = rows.coords.astype(np.float64)
    columns = (coords[:, 0].tolist(), coords[:, 1].tolist(), rows.outlier_score.astype(np.float64).tolist())
    values = tuple(itertools.chain.from_iterable(zip(*columns, strict=True)))
    return (("%r,%r,%r\0" * len(rows.paths)) % values).split("\0")[:-1]


def clusters_csv(rows: Rows, is_medoid: np.ndarray, numbers: Sequence[str]) -> str:
    """clusters.csv: path,cluster,x,y,outlier_score,is_medoid,duplicate_group; `numbers` from number_text."""
    cells = zip(
        _csv_fields(rows.paths),
        rows.labels.tolist(),
        numbers,
        np.asarray(is_medoid, np.int64).tolist(),
        rows.duplicate_group.tolist(),
        strict=True,
    )
    return _table(CSV_COLUMNS, "%s,%d,%s,%d,%d", cells, len(rows.paths))


def hierarchy_columns(tree: ClusterTree) -> list[str]:
    """hierarchy.csv's header after `path`: one k<N> column per stored level, coarse to fine."""
    return [f"k{k}" for k in tree.levels]


def hierarchy_csv(paths: Sequence[str], tree: ClusterTree) -> str:
    """hierarchy.csv: path, then each stored level's labels, coarse to fine (the finest are the leaves)."""
    columns = [tree.cut(k).tolist() for k in tree.levels]
    cells = zip(_csv_fields(paths), *columns, strict=True)
    return _table(["path", *hierarchy_columns(tree)], "%s" + ",%d" * len(columns), cells, len(paths))


def _table(header: list[str], row_format: str, cells, n: int) -> str:
    """Header and rows, CRLF after each; every row formatted by one %-operation over all of them, which
    takes about half the time of joining each row's strings."""
    values = tuple(itertools.chain.from_iterable(cells))
    return ",".join(header) + "\r\n" + ((row_format + "\r\n") * n) % values


def parse_clusters_csv(data: bytes) -> Rows:
    """clusters.csv's columns (TableError for a wrong header or row; ValueError for a cell not a number)."""
    header, rows = _parse(data, "clusters.csv")
    if header != CSV_COLUMNS:
        raise TableError(f"clusters.csv is damaged (unexpected header {header})")
    for number, row in enumerate(rows, start=2):
        if len(row) != len(CSV_COLUMNS):
            raise TableError(f"clusters.csv is damaged (line {number} has {len(row)} fields)")
    n = len(rows)
    columns = list(zip(*rows, strict=True)) if rows else [()] * len(CSV_COLUMNS)
    coords = np.column_stack([_numbers(columns[2], np.float32), _numbers(columns[3], np.float32)])
    return Rows(
        paths=list(columns[0]),
        labels=_numbers(columns[1], np.int64),
        coords=coords.reshape(n, 2),
        outlier_score=_numbers(columns[4], np.float32),
        duplicate_group=_numbers(columns[6], np.int64),
    )


def parse_hierarchy_leaves(data: bytes, n_leaves: int, paths: Sequence[str]) -> np.ndarray:
    """hierarchy.csv's finest column (k<n_leaves>: each row's tree leaf), checked against clusters.csv's paths."""
    header, rows = _parse(data, "hierarchy.csv")
    finest = f"k{int(n_leaves)}"
    if header[:1] != ["path"] or finest not in header:
        raise TableError(f"hierarchy.csv is damaged (header {header[:4]}…, no {finest} column)")
    if len(rows) != len(paths) or any(r[:1] != [p] for r, p in zip(rows, paths, strict=False)):
        raise TableError("hierarchy.csv does not list the images of clusters.csv in the same order")
    column = header.index(finest)
    try:
        return _numbers([r[column] for r in rows], np.int64)
    except (ValueError, IndexError):
        raise TableError(f"hierarchy.csv is damaged (a {finest} cell is not a number)") from None


def _parse(data: bytes, name: str) -> tuple[list[str], list[list[str]]]:
    try:
        reader = csv.reader(io.StringIO(data.decode("utf-8"), newline=""))
        header = next(reader, None) or []
        return header, list(reader)
    except (UnicodeDecodeError, csv.Error) as exc:
        raise TableError(f"cannot read {name}: {exc}") from None


def _csv_fields(texts: Sequence[str]) -> Sequence[str]:
    """The texts as csv.writer writes them: as they are, or in double quotes (quotes doubled) where needed."""
    joined = "\0".join(texts)  # one scan in C for the common case: no text needs quotes
    if not any(mark in joined for mark in _NEEDS_QUOTES):
        return texts
    return [_quoted(text) if any(mark in text for mark in _NEEDS_QUOTES) else text for text in texts]


def _quoted(text: str) -> str:
    return '"' + text.replace('"', '""') + '"'


def _numbers(texts: Sequence[str], dtype) -> np.ndarray:
    """A column of number strings as an array, parsed in C (ValueError on anything that is not a number)."""
    if not len(texts):
        return np.zeros(0, dtype)
    if np.issubdtype(dtype, np.integer):
        return np.asarray(texts, dtype=np.str_).astype(np.int64).astype(dtype)
    return np.asarray(texts, dtype=np.str_).astype(np.float64).astype(dtype)
