"""The window's run on big folders: first map and clusters from a spread sample, then the rest as it comes.

`progressive_task` speaks the same protocol as worker.pipeline_task (the window cannot tell them apart):
("row_keys", keys) then ("preview", Session) events while it works, (Session, keys) at the end. Folders of
at most SAMPLE images take pipeline_task's path unchanged. Bigger ones show the sample's session as a
preview at once, grow it batch by batch through the update path (points appear, none moves), and end
with one re-layout of everything: previews cannot be curated, so nothing can be lost by it.
"""

from __future__ import annotations

from typing import Any

SAMPLE = 3000  # images in the first map
BATCH = 5000  # images added per step after it


def progressive_task(request_fields: dict, cluster_fields: dict) -> Any:
    """A worker task like pipeline_task that shows a sample's map first on folders over SAMPLE images."""
    from imgclust_desktop.gui import worker

    plain = worker.pipeline_task(request_fields, cluster_fields)

    def task(*, on_progress, cancelled, on_event):
        from imgclust_desktop.core import pipeline, sources
        from imgclust_desktop.core.cluster import ClusterParams
        from imgclust_desktop.core.progress import Progress
        from imgclust_desktop.core.progressive import run_progressive

        request = pipeline.PipelineRequest(cluster=ClusterParams(**cluster_fields), **request_fields)
        on_progress(Progress("starting", 0, 0, message="loading libraries"))
        counted = sources.scan(
            request.inputs, include=list(request.include), exclude=list(request.exclude),
            on_progress=on_progress, cancelled=cancelled,
        )  # fmt: skip
        if len(counted.files) <= SAMPLE:
            return plain(on_progress=on_progress, cancelled=cancelled, on_event=on_event)
        on_event("scanned", counted)

        def relay(kind: str, payload: Any) -> None:
            if kind in ("first", "grown"):
                on_event("row_keys", worker.file_keys(payload.paths))
                on_event("preview", payload)

        session = run_progressive(
            request, sample_size=SAMPLE, batch_size=BATCH, relayout=True, scanned=counted,
            on_progress=on_progress, cancelled=cancelled, on_event=relay,
        )  # fmt: skip
        return session, worker.file_keys(session.paths)

    return task
