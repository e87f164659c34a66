"""A real clustered session for the curation tests: real photos on disk, the real default model, run once.

8 views each of three bundled demo photos (cat, brick, rocket: crops, flips, jitter), plus one exact copy
(a near-duplicate pair); PCA map and k-means with k=3 keep the run short. Each test gets its own fresh copy
of the saved session folder.
"""

from __future__ import annotations

import shutil
from pathlib import Path
from typing import Any

import numpy as np

_BASE: dict[str, Path] = {}
DEMO = Path(__file__).resolve().parent.parent / "resources" / "demo"
FOLDERS = ("cat", "brick", "rocket")
PER_FOLDER = 8


def write_demo_subset(root: Path) -> Path:
    """Copy the first 8 views of three demo photos into root/<name>/."""
    for name in FOLDERS:
        (root / name).mkdir(parents=True, exist_ok=True)
        for source in sorted((DEMO / name).iterdir())[:PER_FOLDER]:
            shutil.copy(source, root / name / source.name)
    return root


def base_session_folder(root: Path) -> Path:
    """Run the real pipeline once per test run; returns the saved session folder (do not edit it)."""
    if "folder" not in _BASE:
        from imgclust_desktop.core import pipeline
        from imgclust_desktop.core import session as session_io
        from imgclust_desktop.core.cluster import ClusterParams

        images = write_demo_subset(root / "curation-images")
        first = sorted((images / "brick").iterdir())[3]
        shutil.copy(first, first.with_name(f"{first.stem} copy{first.suffix}"))
        request = pipeline.PipelineRequest(
            inputs=[str(images)],
            embedding="pca",
            cluster=ClusterParams(method="kmeans", k=3, space="reduced"),
            seed=0,
            device="cpu",
        )
        session = pipeline.run(request)
        folder = root / "curation-base-session"
        session_io.save(session, folder, report=False)
        _BASE["folder"] = folder
        _BASE["images"] = images
    return _BASE["folder"]


def fresh_session(root: Path, tmp_path: Path) -> Any:
    """A private copy of the base session, loaded from its own folder under tmp_path."""
    from imgclust_desktop.core import session as session_io

    folder = tmp_path / "session"
    shutil.copytree(base_session_folder(root), folder)
    return session_io.load(folder)


def folder_of(session: Any) -> np.ndarray:
    """The truth: each image's parent folder name."""
    return np.array([Path(p).parent.name for p in session.paths])


def model_with(session: Any) -> Any:
    from imgclust_desktop.gui.session_model import SessionModel, make_thumbnails
    from imgclust_desktop.gui.worker import file_keys

    model = SessionModel()
    model.set_session(session, make_thumbnails(file_keys(session.paths)))
    return model
