"""What storing features as float16 costs: the same pipeline on a session's float32 features and on their
float16 rounding, scored against the class folders.

    .venv/bin/python bench/float16.py SESSION [SESSION ...]

SESSION is a folder written by `imgclust cluster` on class folders (digits, Fashion-MNIST). Its features go
through `imgclust cluster --features` twice (core.embeddings.run, default settings, seed 0): once as saved
(float32) and once rounded to float16, which is how session.save stores features above 1 GiB (1M x 1280).
"""

from __future__ import annotations

import argparse
import csv
import sys
import tempfile
import time
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from imgclust_desktop.core import embeddings  # noqa: E402
from imgclust_desktop.core.evaluate import evaluate, truth_from_paths  # noqa: E402


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("sessions", type=Path, nargs="+")
    args = parser.parse_args(argv)
    print(
        "| session | images | dtype | ACC | NMI | ARI | clusters | seconds |\n|---|---|---|---|---|---|---|---|"
    )
    for session in args.sessions:
        features = np.load(session / "features.npy")
        with open(session / "clusters.csv", newline="", encoding="utf-8") as f:
            paths = [row["path"] for row in csv.DictReader(f)]
        truth = truth_from_paths(paths)
        with tempfile.TemporaryDirectory() as tmp:
            (Path(tmp) / "paths.txt").write_text("\n".join(paths) + "\n", encoding="utf-8")
            for dtype in (np.float32, np.float16):
                np.save(Path(tmp) / "features.npy", features.astype(dtype))
                clock = time.perf_counter()
                result = embeddings.run(embeddings.FeaturesRequest(tmp))
                seconds = time.perf_counter() - clock
                scores = evaluate(result.labels, truth)
                print(
                    f"| {session.name} | {len(paths):,} | {np.dtype(dtype).name} | {scores['acc']:.3f} | "
                    f"{scores['nmi']:.3f} | {scores['ari']:.3f} | {len(result.sizes())} | {seconds:.1f} |",
                    flush=True,
                )
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
