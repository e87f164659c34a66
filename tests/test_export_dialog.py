"""The export dialog on a real session: the preview is exactly what gets written, nothing more; kept only;
chosen clusters; move mode with its manifest; bad patterns and a missing folder say so before anything."""

from __future__ import annotations

import dataclasses
import os
import shutil

import numpy as np
import pytest
from curation_support import folder_of, fresh_session, model_with
from PySide6.QtCore import Qt

from imgclust_desktop.gui.export_dialog import ExportDialog


@pytest.fixture
def session(tmp_path_factory, tmp_path):
    return fresh_session(tmp_path_factory.getbasetemp(), tmp_path)


def files_under(root) -> set[str]:
    """Every file under root except the export manifests."""
    found = set()
    for folder, _dirs, names in os.walk(root):
        for name in names:
            if not name.startswith("imgclust-export-"):
                found.add(os.path.join(folder, name))
    return found


def open_dialog(qtbot, model, dest) -> ExportDialog:
    dialog = ExportDialog(model, None, dest=str(dest))
    qtbot.addWidget(dialog)
    dialog.show()
    return dialog


def run_it(qtbot, dialog) -> None:
    qtbot.mouseClick(dialog.export_button, Qt.MouseButton.LeftButton)
    qtbot.waitUntil(lambda: dialog.worker is None and dialog.manifest is not None, timeout=30_000)


def test_export_writes_what_the_preview_showed_and_nothing_else(qtbot, session, tmp_path):
    model = model_with(session)
    truth = folder_of(session)
    cat = int(session.labels[np.flatnonzero(truth == "cat")[0]])
    excluded_row = int(np.flatnonzero(truth == "cat")[1])
    model.set_excluded([excluded_row], True)
    dest = tmp_path / "out"
    # a file already where the first cat image would go: it must be kept, the export takes "name (2)"
    first = session.paths[int(np.flatnonzero(truth == "cat")[0])]
    clash = dest / session.name_of(cat) / os.path.basename(first)
    clash.parent.mkdir(parents=True)
    clash.write_bytes(b"already here")

    dialog = open_dialog(qtbot, model, dest)
    dialog.set_chosen_clusters([cat])
    dialog.pattern.setText("{cluster_name}_{n}_{name}")
    qtbot.waitUntil(lambda: not dialog._timer.isActive(), timeout=2_000)
    preview = dialog.preview_pairs()
    cats = [session.paths[i] for i in np.flatnonzero(truth == "cat") if i != excluded_row]
    assert sorted(src for src, _ in preview) == sorted(cats)  # kept images of the chosen cluster only
    assert not any(os.path.exists(dst) for _, dst in preview)  # nothing happened yet
    assert "7 files will be copied" in dialog.summary.text()

    run_it(qtbot, dialog)
    assert files_under(dest) == {dst for _, dst in preview} | {str(clash)}
    for src, dst in preview:
        with open(src, "rb") as a, open(dst, "rb") as b:
            assert a.read() == b.read()
        assert os.path.exists(src)  # a copy leaves the original
    assert clash.read_bytes() == b"already here"
    assert dialog.manifest.done == 7 and dialog.manifest.csv_path.is_file()
    assert "7 of 7 files copied" in dialog.summary.text()
    assert dialog.export_button.text() == "Close"


def test_default_export_is_every_kept_image_of_every_cluster_not_excluded(qtbot, session, tmp_path):
    model = model_with(session)
    truth = folder_of(session)
    brick = int(session.labels[np.flatnonzero(truth == "brick")[0]])
    model.set_clusters_excluded([brick], True)
    dialog = open_dialog(qtbot, model, tmp_path / "out")
    sources = {src for src, _ in dialog.preview_pairs()}
    assert sources == {p for p, t in zip(session.paths, truth, strict=True) if t != "brick"}
    assert len({os.path.dirname(dst) for _, dst in dialog.preview_pairs()}) == 2  # one folder per cluster


def test_move_mode_moves_exactly_the_preview_and_writes_an_undo_manifest(qtbot, session, tmp_path):
    # private copies of the images: a move must not take the shared test images away
    own = tmp_path / "own-images"
    shutil.copytree(os.path.dirname(os.path.dirname(session.paths[0])), own)
    base = os.path.dirname(os.path.dirname(session.paths[0]))
    session = dataclasses.replace(session, paths=[p.replace(base, str(own), 1) for p in session.paths])
    model = model_with(session)
    model.select(np.arange(5))
    dialog = open_dialog(qtbot, model, tmp_path / "moved")
    dialog.scope_selection.setChecked(True)
    dialog.mode.setCurrentIndex(dialog.mode.findData("move"))
    dialog.update_preview()
    preview = dialog.preview_pairs()
    assert sorted(src for src, _ in preview) == sorted(session.paths[:5])
    run_it(qtbot, dialog)
    assert files_under(tmp_path / "moved") == {dst for _, dst in preview}
    assert not any(os.path.exists(src) for src, _ in preview)
    assert all(os.path.exists(p) for p in session.paths[5:])  # the rest stayed
    assert "moved" in dialog.summary.text() and "--undo" in dialog.summary.text()


def test_a_bad_name_pattern_or_no_folder_stops_before_anything(qtbot, session, tmp_path):
    model = model_with(session)
    dialog = open_dialog(qtbot, model, "")
    assert not dialog.export_button.isEnabled() and "Choose a folder" in dialog.summary.text()
    dialog.dest.setText(str(tmp_path / "out"))
    dialog.pattern.setText("{nonsense}")
    dialog.update_preview()
    assert not dialog.export_button.isEnabled() and "bad name pattern" in dialog.summary.text()
    dialog.start_export()
    assert dialog.worker is None and not (tmp_path / "out").exists()
