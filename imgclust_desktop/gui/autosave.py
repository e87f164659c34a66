"""Autosave: the session is written after every N edits and on close, so a crash loses few edits.

The write waits for a quiet moment (QUIET_MS without a further edit), so that it never runs inside an edit:
a re-cut of the slider that was the N-th step took the snapshot (tens of ms at 100,000 images) and shared
the interpreter with the writing thread. A run of 2 N edits without a pause is written at once.

Where: the session's own folder when it has one (it was opened from or saved to a folder), else a folder
per set of inputs under the user data folder (`IMGCLUST_DATA_DIR` overrides it), found again when the same
inputs are opened. The write runs in a background thread on a snapshot of the edited arrays; features
never change with an edit, so features.npy is written once per folder, not on every save.
"""

from __future__ import annotations

import copy
import hashlib
import json
import os
import threading
import weakref
from pathlib import Path
from typing import Any

from PySide6.QtCore import QObject, QTimer, Signal

DEFAULT_EVERY = 10
QUIET_MS = 1000  # an autosave that is due waits for this long without a further edit


def data_dir() -> Path:
    """The user data folder of the app (platformdirs), or IMGCLUST_DATA_DIR."""
    override = os.environ.get("IMGCLUST_DATA_DIR")
    if override:
        return Path(override)
    from platformdirs import user_data_dir

    return Path(user_data_dir("imgclust-desktop", appauthor=False))


def autosave_folder(inputs: list[str], root: Path | None = None) -> Path:
    """The autosave folder for a set of inputs (order does not matter)."""
    key = json.dumps(sorted(os.path.abspath(p) for p in inputs)).encode("utf-8")
    return Path(root or data_dir()) / "autosave" / hashlib.sha1(key).hexdigest()[:16]


def find_autosave(inputs: list[str], root: Path | None = None) -> Path | None:
    """The autosaved session for these inputs, if one was written."""
    if not inputs:
        return None
    folder = autosave_folder(inputs, root)
    return folder if (folder / "session.json").is_file() else None


class Autosaver(QObject):
    """Counts undo-stack steps of a SessionModel and writes the session every `every` of them."""

    saved = Signal(str)  # folder
    failed = Signal(str)  # message

    def __init__(self, model: Any, every: int = DEFAULT_EVERY, root: Path | None = None) -> None:
        super().__init__(model)
        self.model, self.every, self.root = model, max(1, int(every)), root
        self.pending = 0  # edits since the last autosave
        self.last_folder: Path | None = None
        self._thread: threading.Thread | None = None
        self._features_in: dict[str, Any] = {}  # folder -> the features array already written there
        self._due = QTimer(self, singleShot=True, interval=QUIET_MS)  # a save that waits for a quiet moment
        self._due.timeout.connect(self._save_due)
        # Plain functions holding a weak reference, not bound slots: the undo stack emits while the model
        # is being destroyed, when a bound slot of this (half-destroyed) child can no longer be looked up.
        ref = weakref.ref(self)
        model.undo_stack.indexChanged.connect(lambda index: (me := ref()) is not None and me._stepped(index))
        model.sessionReplaced.connect(lambda session: (me := ref()) is not None and me._new_session(session))

    def folder_for(self, session: Any) -> Path:
        if session.path is not None:
            return Path(session.path)
        return autosave_folder(list(session.inputs) or list(session.paths[:1]), self.root)

    def _new_session(self, session: Any) -> None:
        self.pending = 0
        self._due.stop()
        if session is not None and session.path is not None:
            self._features_in[str(session.path)] = session.features  # loaded from there: already on disk

    def _stepped(self, _index: int) -> None:
        if self.model.session is None or self.model.provisional:
            return
        self.pending += 1
        if self.pending >= 2 * self.every:  # edits without a pause: do not put it off any longer
            self._due.stop()
            self.save_now(wait=False)
        elif self.pending >= self.every:
            self._due.start()  # (re)started by every edit: written once the person pauses
            if not self._due.isActive():  # no event loop to wait in (no Qt application): write it now
                self.save_now(wait=False)

    def _save_due(self) -> None:
        if self._thread is not None and self._thread.is_alive():
            self._due.start()  # the last write is still going: try again in a moment, without blocking
            return
        self.save_now(wait=False)

    def save_now(self, *, wait: bool = True) -> Path | None:
        """Write the current session if it has unsaved edits; wait=True blocks until it is on disk."""
        session = self.model.session
        if session is None or self.model.provisional or self.pending == 0:
            return None
        self._due.stop()
        self.wait()
        folder = self.folder_for(session)
        # The edited parts copied, the rest shared (features, paths, tree: never changed by an edit); a
        # copy, not dataclasses.replace, so that Session.__post_init__ does not check 100,000 rows again.
        snapshot = copy.copy(session)
        snapshot.labels = session.labels.copy()
        snapshot.excluded = session.excluded.copy()
        snapshot.clusters = dict(session.clusters)
        snapshot.edits = list(session.edits)
        snapshot.scores = dict(session.scores)
        write_features = self._features_in.get(str(folder)) is not session.features
        self._features_in[str(folder)] = session.features
        self.pending = 0
        self.last_folder = folder
        self._thread = threading.Thread(
            target=self._write, args=(snapshot, folder, write_features), name="imgclust-autosave", daemon=True
        )
        self._thread.start()
        if wait:
            self.wait()
        return folder

    def wait(self, timeout: float | None = 30.0) -> None:
        """Until what is due is on disk: a save waiting for a quiet moment is written now."""
        if self._due.isActive():
            self.save_now(wait=False)  # stops the timer first, then waits for any earlier write
        if self._thread is not None:
            self._thread.join(timeout)

    def _write(self, snapshot: Any, folder: Path, write_features: bool) -> None:
        from imgclust_desktop.core import session as session_io

        try:
            session_io.save(snapshot, folder, report=False, write_features=write_features)
        except Exception as exc:  # a full disk must not crash the app: say so in the status bar
            self._features_in.pop(str(folder), None)
            self.failed.emit(f"Autosave to {folder} failed: {exc}")
        else:
            self.saved.emit(str(folder))
