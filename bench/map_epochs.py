"""How many UMAP epochs the 2-D map needs, measured on the features of a saved session.

    .venv/bin/python bench/map_epochs.py SESSION [--epochs 100 0] [--png DIR]

SESSION is a folder written by `imgclust cluster` on class folders (e.g. Fashion-MNIST 70k); its
features.npy is reused, so nothing is extracted again. For each epoch count (0 = UMAP's own choice:
500 up to 10,000 rows, 200 above) the script times the 2-D map with the pipeline's settings and
reports two things: the share of each image's 10 nearest map neighbours that are in its own class,
and the share of its 10 nearest neighbours in the reduced space that stay among its 10 in the map.
With --png it also draws each map coloured by class, so the layouts can be compared by eye.
With --sample N1 N2 ... it also times the big-set map (embed.umap_sample_and_place: UMAP on N rows, the
rest placed at the weighted mean of their mapped neighbours) and reports the same two figures for it.
"""

from __future__ import annotations

import argparse
import csv
import sys
import time
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from imgclust_desktop.core.embed import (  # noqa: E402
    nearest_neighbours,
    sampled_neighbours,
    umap_knn_size,
    umap_sample_and_place,
    umap_transform,
)
from imgclust_desktop.core.evaluate import truth_from_paths  # noqa: E402
from imgclust_desktop.core.reduce import reduce  # noqa: E402
from imgclust_desktop.gui.colors import labels_rgb  # noqa: E402

NEIGHBOURS = 10


def neighbours_2d(xy: np.ndarray) -> np.ndarray:
    from sklearn.neighbors import NearestNeighbors

    _, idx = NearestNeighbors(n_neighbors=NEIGHBOURS + 1).fit(xy).kneighbors(xy)
    return idx[:, 1:]


def draw(xy: np.ndarray, classes: np.ndarray, path: Path, side: int = 900) -> None:
    from PIL import Image

    image = np.full((side, side, 3), 255, np.uint8)
    lo, hi = xy.min(axis=0), xy.max(axis=0)
    px = np.round((xy - lo) / np.maximum(hi - lo, 1e-9) * (side - 21) + 10).astype(int)
    image[px[:, 1], px[:, 0]] = labels_rgb(classes)
    Image.fromarray(image).save(path)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("session", type=Path)
    parser.add_argument("--epochs", type=int, nargs="+", default=[100, 0])
    parser.add_argument("--png", type=Path, help="write map-<epochs>.png here")
    parser.add_argument(
        "--sample", type=int, nargs="*", default=[], help="also map a sample of N, place the rest"
    )
    args = parser.parse_args(argv)

    features = np.load(args.session / "features.npy")
    with open(args.session / "clusters.csv", newline="", encoding="utf-8") as f:
        paths = [row["path"] for row in csv.DictReader(f)]
    classes = np.unique(truth_from_paths(paths), return_inverse=True)[1]
    reduced = reduce(features, n_components=50, seed=0)
    knn = nearest_neighbours(reduced.data, umap_knn_size(len(reduced.data)))
    high = knn.indices[:, 1 : NEIGHBOURS + 1]
    print(f"{len(features):,} images, {features.shape[1]}-d features, {len(np.unique(classes))} classes")
    print("| epochs | map seconds | 10-NN in own class | 10-NN kept from the reduced space |")
    print("|---|---|---|---|")
    runs = [(e, None) for e in args.epochs] + [(0, n) for n in args.sample]
    for epochs, sample in runs:
        clock = time.perf_counter()
        if sample:
            sampled = sampled_neighbours(
                reduced.data, sample_size=sample, seed=0
            )  # the pipeline's big-set graph
            xy = umap_sample_and_place(reduced.data, sampled, seed=0)
        else:
            xy = umap_transform(reduced.data, n_components=2, seed=0, knn=knn, n_epochs=epochs or None)
        seconds = time.perf_counter() - clock
        low = neighbours_2d(xy)
        same_class = float((classes[low] == classes[:, None]).mean())
        kept = float(
            np.mean([len(np.intersect1d(a, b)) for a, b in zip(high, low, strict=True)]) / NEIGHBOURS
        )
        label = f"UMAP default on a {sample:,} sample, rest placed" if sample else (epochs or "UMAP default")
        print(f"| {label} | {seconds:.1f} | {same_class:.3f} | {kept:.3f} |", flush=True)
        if args.png:
            args.png.mkdir(parents=True, exist_ok=True)
            draw(xy, classes, args.png / f"map-{f'sample{sample}' if sample else epochs or 'default'}.png")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
