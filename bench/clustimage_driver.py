"""Run clustimage with its defaults on one folder and write its labels as JSON (runs in its own venv).

Usage: bench/.venv-clustimage/bin/python bench/clustimage_driver.py FOLDER OUT.json
Called by bench/compare.py; it imports only clustimage and the standard library, so it runs in the
clustimage virtual environment, not in this project's. OUT.json: {"pathnames": [...], "labels": [...],
"seconds": fit_transform wall seconds, "version": clustimage version}.
"""

import json
import os
import sys
import time


def main() -> int:
    folder, out = sys.argv[1], sys.argv[2]
    import clustimage
    from clustimage import Clustimage

    start = time.perf_counter()
    model = Clustimage()  # defaults: PCA features, t-SNE map, agglomerative + silhouette
    results = model.fit_transform(folder)
    seconds = time.perf_counter() - start
    if results is None:
        print(f"clustimage returned nothing for {folder}", file=sys.stderr)
        return 1
    record = {
        "pathnames": [os.path.abspath(p) for p in results["pathnames"]],
        "labels": [int(x) for x in results["labels"]],
        "seconds": seconds,
        "version": getattr(clustimage, "__version__", "?"),
    }
    with open(out, "w") as handle:
        json.dump(record, handle)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
