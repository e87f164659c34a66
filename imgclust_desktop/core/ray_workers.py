"""What runs on the Ray nodes for `--engine ray`: decode tasks and the model actor (see distributed.py).

Both reuse the local engine's code, so a Ray run decodes, skips and embeds exactly as a local run does:
`ingest.decode_file` (or `remote.decode_url` for object-store URLs) and the registry's extractor.
"""

from __future__ import annotations

import numpy as np

from .sources import FileIdentity, Skipped

THUMB_SIZES = (128, 256)


def decode_batch(batch: dict, max_side: int) -> dict:
    """Ray task: decode a batch of file rows with the local engine's code; failures become reasons."""
    from . import remote
    from .ingest import decode_file

    count = len(batch["path"])
    images = np.empty(count, dtype=object)
    ok = np.zeros(count, bool)
    reasons, keys, thumbs = [""] * count, [""] * count, {size: [b""] * count for size in THUMB_SIZES}
    for i in range(count):
        identity = FileIdentity(str(batch["path"][i]), int(batch["size"][i]), int(batch["mtime_ns"][i]))
        keys[i] = identity.key()
        if remote.is_url(identity.path):
            result = remote.decode_url(identity, max_side)
        else:
            result = decode_file(identity, max_side)
        if isinstance(result, Skipped):
            reasons[i], images[i] = result.reason, np.zeros((1, 1, 3), np.uint8)
        else:
            ok[i], images[i] = True, result.image
            for size in THUMB_SIZES:
                thumbs[size][i] = result.thumbnails.get(size, b"")
    return {
        "path": batch["path"],
        "shard": batch["shard"],
        "key": np.array(keys, dtype=object),
        "ok": ok,
        "reason": np.array(reasons, dtype=object),
        "image": images,
        "thumb128": np.array(thumbs[128], dtype=object),
        "thumb256": np.array(thumbs[256], dtype=object),
    }


class EmbedActor:
    """Ray actor: builds the extractor once, then embeds decoded batches (half precision on GPUs)."""

    def __init__(self, spec: dict, device: str, threads: int | None) -> None:
        from .models import registry

        self.extractor = registry.create(
            spec["model_id"],
            device=device,
            weights_path=spec["weights_path"],
            layer=spec["layer"],
            input_size=spec["input_size"],
        )
        if threads and self.extractor.device == "cpu":
            import torch

            torch.set_num_threads(threads)  # the slot Ray gave this actor, not every core of the node
        self.dim = int(self.extractor.dim)

    def __call__(self, batch: dict) -> dict:
        ok = np.asarray(batch["ok"], bool)
        features = np.zeros((len(ok), self.dim), np.float32)
        rows = np.flatnonzero(ok)
        if len(rows):
            images = [np.asarray(batch["image"][i]) for i in rows]
            features[rows] = self.extractor.embed(self.extractor.preprocess(images))
        cache_key = np.array([self.extractor.cache_key] * len(ok), dtype=object)
        keep = ("path", "shard", "key", "ok", "reason", "thumb128", "thumb256")
        return {**{name: batch[name] for name in keep}, "features": features, "cache_key": cache_key}
