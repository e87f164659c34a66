"""Reduce: L2-normalise feature rows, then PCA to a few dozen dimensions (variance kept is reported)."""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np


@dataclass
class Reduced:
    data: np.ndarray  # float32 [n, n_components]
    n_components: int
    variance_kept: float  # fraction of the normalised features' variance the components keep
    pca: object | None  # the fitted sklearn PCA (None when no PCA was run)


def l2_normalise(x: np.ndarray) -> np.ndarray:
    """Rows scaled to unit length; all-zero rows stay zero instead of becoming NaN."""
    x = np.asarray(x, dtype=np.float32)
    norms = np.linalg.norm(x, axis=1, keepdims=True)
    return x / np.maximum(norms, 1e-12)


def reduce(features: np.ndarray, *, n_components: int | float | None = 50, seed: int = 0) -> Reduced:
    """L2-normalise rows, then PCA to n components (int) or to a kept-variance fraction (float in (0,1])."""
    from sklearn.decomposition import PCA

    x = np.asarray(features, dtype=np.float32)
    if x.ndim != 2 or len(x) == 0:
        raise ValueError(f"features must be a non-empty 2-D array, got shape {x.shape}")
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
    solver = "covariance_eigh" if n >= dim else "full"
    pca = PCA(n_components=target, svd_solver=solver, random_state=seed)
    data = pca.fit_transform(x).astype(np.float32)
    kept = float(np.sum(pca.explained_variance_ratio_))
    return Reduced(np.ascontiguousarray(data), int(pca.n_components_), kept, pca)
