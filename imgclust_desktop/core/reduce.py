"""Reduce: L2-normalise feature rows, then PCA to a few dozen dimensions (variance kept is reported).

The PCA is sklearn's, computed the same way with numpy and scipy.linalg (the same solvers, sign rule and
projection: test_reduce checks the results are equal): importing sklearn cost `imgclust update` ~2 CPU s,
more than its PCA and placement together.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from .mapped import release

# Above this many feature values (256 MiB as float32) the PCA runs in row chunks over the (possibly
# memory-mapped float16) features: no n x dim float32 copy, whose 5 GB at 1M x 1280 alone breaks 8 GB.
CHUNKED_ABOVE = 64 * 1024 * 1024
CHUNK_ROWS = 16384


@dataclass
class Reduced:
    data: np.ndarray  # float32 [n, n_components]
    n_components: int
    variance_kept: float  # fraction of the normalised features' variance the components keep
    pca: Projection | None  # maps more rows into the same space (None when no PCA was run)


@dataclass
class Projection:
    """A fitted PCA: rows map to (x - mean) @ components.T, as sklearn's PCA.transform computes it."""

    mean: np.ndarray  # float32 [dim]
    components: np.ndarray  # float32 [n_components, dim]

    def transform(self, x: np.ndarray) -> np.ndarray:
        """Rows already L2-normalised (as reduce() normalises its own) -> float32 [n, n_components]."""
        x = np.asarray(x, dtype=np.float32)
        return x @ self.components.T - self.mean.reshape(1, -1) @ self.components.T


def l2_normalise(x: np.ndarray) -> np.ndarray:
    """Rows scaled to unit length; all-zero rows stay zero instead of becoming NaN."""
    x = np.asarray(x, dtype=np.float32)
    norms = np.linalg.norm(x, axis=1, keepdims=True)
    return x / np.maximum(norms, 1e-12)


def reduce(features: np.ndarray, *, n_components: int | float | None = 50, seed: int = 0) -> Reduced:
    """L2-normalise rows, then PCA to n components (int) or to a kept-variance fraction (float in (0,1]).

    seed: kept for callers; both solvers used here are exact and deterministic.
    """
    shape = np.shape(features)
    if len(shape) != 2 or shape[0] == 0:
        raise ValueError(f"features must be a non-empty 2-D array, got shape {shape}")
    if (
        shape[0] * shape[1] > CHUNKED_ABOVE
        and n_components is not None
        and min(shape) >= 2
        and not (isinstance(n_components, int) and n_components >= shape[1])
    ):
        return reduce_chunked(features, n_components=n_components)
    x = np.asarray(features, dtype=np.float32)
    x = l2_normalise(np.nan_to_num(x, nan=0.0, posinf=0.0, neginf=0.0))
    n, dim = x.shape
    limit = min(n, dim)
    if n_components is None or limit < 2:
        return Reduced(x, dim, 1.0, None)
    if isinstance(n_components, float) and not 0 < n_components <= 1:
        raise ValueError(f"a kept-variance fraction must be in (0, 1], got {n_components}")
    if isinstance(n_components, float):
        target: int | float = n_components if n_components < 1 else limit
    else:
        if n_components < 1:
            raise ValueError(f"n_components must be >= 1, got {n_components}")
        target = min(int(n_components), limit)
    if target == dim:
        # Keeping every dimension is just a rotation: skip it, the normalised features are as good.
        return Reduced(x, dim, 1.0, None)
    # covariance_eigh is exact, deterministic and fast when n >> dim (100k x 1280: a 1280^2 eigenproblem).
    if n >= dim:
        return _pca_covariance_eigh(x, target)
    return _pca_full(x, target)


def _pca_full(x: np.ndarray, target: int | float) -> Reduced:
    """sklearn PCA(svd_solver="full").fit_transform: LAPACK gesdd of the centred rows, scores U * S."""
    from scipy import linalg

    mean = np.mean(x, axis=0)
    u, s, vt = linalg.svd(x - mean, full_matrices=False)
    signs = _flip_signs(vt)
    u *= signs[np.newaxis, :]
    vt *= signs[:, np.newaxis]
    ratio = (s**2) / (len(x) - 1)
    ratio = ratio / np.sum(ratio)
    keep = _components_kept(ratio, target)
    data = u[:, :keep] * s[:keep]
    projection = Projection(mean, np.array(vt[:keep]))
    return Reduced(
        np.ascontiguousarray(data, dtype=np.float32), keep, float(np.sum(ratio[:keep])), projection
    )


def _pca_covariance_eigh(x: np.ndarray, target: int | float) -> Reduced:
    """sklearn PCA(svd_solver="covariance_eigh").fit_transform: eigenvectors of the covariance, projected."""
    n = len(x)
    mean = np.mean(x, axis=0)
    cov = x.T @ x
    cov -= n * mean.reshape(-1, 1) * mean.reshape(1, -1)
    cov /= n - 1
    values, vectors = np.linalg.eigh(cov)
    values, vectors = np.flip(values, axis=0), np.flip(vectors, axis=1)
    values[values < 0.0] = 0.0
    vt = vectors.T
    vt *= _flip_signs(vt)[:, np.newaxis]
    ratio = values / np.sum(values)
    keep = _components_kept(ratio, target)
    projection = Projection(mean, np.array(vt[:keep]))
    data = projection.transform(x)
    return Reduced(
        np.ascontiguousarray(data, dtype=np.float32), keep, float(np.sum(ratio[:keep])), projection
    )


def _flip_signs(vt: np.ndarray) -> np.ndarray:
    """sklearn's svd_flip(u_based_decision=False): each component's largest-magnitude loading positive."""
    return np.sign(vt[np.arange(len(vt)), np.argmax(np.abs(vt), axis=1)])


def _components_kept(ratio: np.ndarray, target: int | float) -> int:
    """Components kept: `target` itself, or for a fraction as many as keep more than that variance."""
    if isinstance(target, float) and target < 1:
        return int(np.searchsorted(np.cumsum(ratio), np.asarray(target), side="right") + 1)
    return int(target)


def reduce_chunked(
    features: np.ndarray, *, n_components: int | float = 50, chunk: int = CHUNK_ROWS
) -> Reduced:
    """reduce() in row chunks: the covariance of the L2-normalised rows summed chunk by chunk (float64),
    its eigenvectors, then each chunk projected. The same components as PCA's covariance_eigh solver
    (signs fixed the same way); memory is dim^2 + chunk x dim + the n x n_components result.
    """
    n, dim = features.shape

    def rows(start: int) -> np.ndarray:
        block = np.array(features[start : start + chunk], dtype=np.float32)
        release(features)  # a memory-mapped file's pages leave the resident set chunk by chunk
        return l2_normalise(np.nan_to_num(block, nan=0.0, posinf=0.0, neginf=0.0))

    total = np.zeros(dim, np.float64)
    gram = np.zeros((dim, dim), np.float64)
    for start in range(0, n, chunk):
        x = rows(start)
        total += x.sum(axis=0, dtype=np.float64)
        gram += (x.T @ x).astype(np.float64)
    mean = total / n
    cov = (gram - n * np.outer(mean, mean)) / max(1, n - 1)
    values, vectors = np.linalg.eigh(cov)
    values, vectors = np.maximum(values[::-1], 0.0), vectors[:, ::-1]
    ratio = values / max(values.sum(), 1e-300)
    if isinstance(n_components, float):
        keep = int(np.searchsorted(np.cumsum(ratio), n_components - 1e-12) + 1) if n_components < 1 else dim
    else:
        keep = int(n_components)
    keep = max(1, min(keep, dim, n))
    components = vectors[:, :keep]
    # sklearn's svd_flip(u_based_decision=False): the largest-magnitude loading of each component positive.
    signs = np.sign(components[np.argmax(np.abs(components), axis=0), np.arange(keep)])
    components = (components * np.where(signs == 0, 1.0, signs)).astype(np.float32)
    mean32 = mean.astype(np.float32)
    data = np.empty((n, keep), np.float32)
    for start in range(0, n, chunk):
        x = rows(start)
        data[start : start + len(x)] = (x - mean32) @ components
    return Reduced(
        data, keep, float(ratio[:keep].sum()), Projection(mean32, np.ascontiguousarray(components.T))
    )
