"""Approximate nearest neighbours: recall@k against exact search and seconds, per library, on a mixture.

    python bench/ann.py --n 50000 200000 --dim 50 --k 15 [--libs pynndescent hnswlib faiss]

Data: a 100-component Gaussian mixture in --dim dimensions (like PCA-reduced image features: clusters of
uneven spread). Recall is measured on 1,000 query rows against brute force. Libraries that are not
installed are skipped with a note (hnswlib and faiss-cpu are not project dependencies).
"""

from __future__ import annotations

import argparse
import os
import sys
import time

import numpy as np

sys.path.insert(0, os.path.join(os.path.dirname(__file__), ".."))


def mixture(n: int, dim: int, components: int = 100, seed: int = 0) -> np.ndarray:
    rng = np.random.default_rng(seed)
    centres = rng.normal(0, 1, (components, dim)).astype(np.float32)
    spread = rng.uniform(0.15, 0.6, components).astype(np.float32)
    label = rng.integers(0, components, n)
    return centres[label] + rng.normal(0, 1, (n, dim)).astype(np.float32) * spread[label, None]


def exact(data: np.ndarray, queries: np.ndarray, k: int) -> np.ndarray:
    from sklearn.neighbors import NearestNeighbors

    return NearestNeighbors(n_neighbors=k, algorithm="brute").fit(data).kneighbors(data[queries])[1]


def run_pynndescent(data, k, seed):
    from pynndescent import NNDescent

    index = NNDescent(data, n_neighbors=k, random_state=seed, low_memory=True, n_jobs=-1)
    return index.neighbor_graph[0]


def run_hnswlib(data, k, seed):
    import hnswlib

    index = hnswlib.Index(space="l2", dim=data.shape[1])
    index.init_index(max_elements=len(data), ef_construction=100, M=16, random_seed=seed)
    index.set_num_threads(os.cpu_count() or 1)
    index.add_items(data)
    index.set_ef(max(2 * k, 50))
    return index.knn_query(data, k=k)[0]


def run_faiss(data, k, seed):
    import faiss

    index = faiss.IndexHNSWFlat(data.shape[1], 16)
    index.hnsw.efConstruction = 100
    index.add(data)
    index.hnsw.efSearch = max(2 * k, 50)
    return index.search(data, k)[1]


LIBS = {"pynndescent": run_pynndescent, "hnswlib": run_hnswlib, "faiss": run_faiss}


def main() -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--n", type=int, nargs="+", default=[50_000, 200_000])
    parser.add_argument("--dim", type=int, default=50)
    parser.add_argument("--k", type=int, default=15)
    parser.add_argument("--libs", nargs="+", default=list(LIBS))
    args = parser.parse_args()
    print(f"load average {os.getloadavg()[0]:.2f} on {os.cpu_count()} CPUs")
    print("| n | library | seconds | recall@k |\n|---|---|---|---|")
    for n in args.n:
        data = np.ascontiguousarray(mixture(n, args.dim))
        queries = np.random.default_rng(1).choice(n, 1000, replace=False)
        truth = exact(data, queries, args.k)
        for name in args.libs:
            try:
                clock = time.perf_counter()
                found = LIBS[name](data, args.k, 0)
                seconds = time.perf_counter() - clock
            except ImportError as exc:
                print(f"| {n:,} | {name} | not installed ({exc}) | |")
                continue
            hits = [len(set(found[q].tolist()) & set(truth[i].tolist())) for i, q in enumerate(queries)]
            recall = np.mean(hits) / args.k
            print(f"| {n:,} | {name} | {seconds:.1f} | {recall:.3f} |", flush=True)


if __name__ == "__main__":
    main()
