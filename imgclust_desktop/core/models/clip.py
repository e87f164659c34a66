"""CLIP / OpenCLIP image and text towers: features for clustering plus text-to-image search."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np

from ..progress import CancelFlag, ProgressCallback, never_cancelled, no_progress
from . import download as downloads
from .base import TorchExtractor, weights_file_tag
from .download import DownloadError

CLIP_MEAN = (0.48145466, 0.4578275, 0.40821073)
CLIP_STD = (0.26862954, 0.26130258, 0.27577711)


@dataclass(frozen=True)
class ClipSpec:
    display_name: str
    architecture: str  # open_clip model name
    pretrained: str  # open_clip pretrained tag
    hf_repo: str
    dim: int
    input_size: int
    mean: tuple[float, float, float]
    std: tuple[float, float, float]
    licence: str
    description: str

    @property
    def filename(self) -> str:
        return f"open_clip-{self.architecture}-{self.pretrained}.safetensors"


CATALOGUE: dict[str, ClipSpec] = {
    "clip-vit-b-32": ClipSpec(
        "CLIP ViT-B/32 (LAION-2B)",
        "ViT-B-32",
        "laion2b_s34b_b79k",
        "laion/CLIP-ViT-B-32-laion2B-s34B-b79K",
        512,
        224,
        CLIP_MEAN,
        CLIP_STD,
        "MIT",
        "OpenCLIP image+text model: semantic features and text search; fast for a CLIP. Download about 605 MB.",
    ),
    "clip-vit-b-16": ClipSpec(
        "CLIP ViT-B/16 (LAION-2B)",
        "ViT-B-16",
        "laion2b_s34b_b88k",
        "laion/CLIP-ViT-B-16-laion2B-s34B-b88K",
        512,
        224,
        CLIP_MEAN,
        CLIP_STD,
        "MIT",
        "OpenCLIP with finer patches: better features than B/32, about 4x slower. Download about 599 MB.",
    ),
    "clip-vit-l-14": ClipSpec(
        "CLIP ViT-L/14 (LAION-2B)",
        "ViT-L-14",
        "laion2b_s32b_b82k",
        "laion/CLIP-ViT-L-14-laion2B-s32B-b82K",
        768,
        224,
        (0.5, 0.5, 0.5),
        (0.5, 0.5, 0.5),
        "MIT",
        "Large OpenCLIP: the strongest features here; wants a GPU. Download about 1.7 GB.",
    ),
}


def needs_download(model_id: str) -> bool:
    """True while the weights for model_id are not yet in the user cache."""
    return downloads.cached_weights(CATALOGUE[model_id].filename) is None


def fetch_weights(
    model_id: str, *, on_progress: ProgressCallback = no_progress, cancelled: CancelFlag = never_cancelled
) -> str:
    """Download the model's weights from the Hugging Face hub into the cache (safetensors, else .bin)."""
    spec = CATALOGUE[model_id]
    base = f"https://huggingface.co/{spec.hf_repo}/resolve/main/"
    try:
        return str(
            downloads.download(
                base + "open_clip_model.safetensors",
                spec.filename,
                on_progress=on_progress,
                cancelled=cancelled,
            )
        )
    except DownloadError:
        # older repos only publish the pickle-free torch zip; it still loads with weights_only=True
        name = spec.filename.replace(".safetensors", ".bin")
        return str(
            downloads.download(
                base + "open_clip_pytorch_model.bin", name, on_progress=on_progress, cancelled=cancelled
            )
        )


def create(
    model_id: str,
    *,
    device: str = "auto",
    weights_path: str | None = None,
    input_size: int | None = None,
    on_progress: ProgressCallback = no_progress,
    cancelled: CancelFlag = never_cancelled,
) -> ClipExtractor:
    """A registry CLIP model from a local weights file, the cache, or a download."""
    spec = CATALOGUE[model_id]
    if input_size and int(input_size) != spec.input_size:
        raise ValueError(f"{model_id} is a ViT with a fixed {spec.input_size} px input")
    if weights_path is None:
        cached = downloads.cached_weights(spec.filename) or downloads.cached_weights(
            spec.filename.replace(".safetensors", ".bin")
        )
        weights_path = (
            str(cached) if cached else fetch_weights(model_id, on_progress=on_progress, cancelled=cancelled)
        )
        tag = spec.pretrained
    else:
        tag = f"file={weights_file_tag(weights_path)}"
    return ClipExtractor(
        spec.architecture,
        weights_path=weights_path,
        device=device,
        id=model_id,
        display_name=spec.display_name.split(" (")[0],
        mean=spec.mean,
        std=spec.std,
        licence=spec.licence,
        cache_key=f"{model_id}@{spec.input_size}/{tag}",
    )


class ClipExtractor(TorchExtractor):
    """Any open_clip architecture; L2-normalised image and text embeddings in one shared space."""

    has_text = True

    def __init__(
        self,
        architecture: str,
        *,
        weights_path: str | None,
        device: str = "auto",
        id: str | None = None,
        display_name: str | None = None,
        mean: Sequence[float] = CLIP_MEAN,
        std: Sequence[float] = CLIP_STD,
        licence: str = "",
        cache_key: str | None = None,
    ) -> None:
        import open_clip

        # pretrained=None: open_clip must never fetch anything itself; weights come from our file
        model = open_clip.create_model(architecture, pretrained=None, device="cpu")
        if weights_path is not None:
            try:
                open_clip.load_checkpoint(model, weights_path, strict=True, weights_only=True)
            except Exception as error:  # unreadable, refused by weights_only, wrong keys or shapes
                raise ValueError(
                    f"{weights_path} does not hold {architecture} CLIP weights: {error}"
                ) from error
        image_size = model.visual.image_size
        size = int(image_size[0] if isinstance(image_size, (tuple, list)) else image_size)
        dim = int(model.text_projection.shape[1]) if hasattr(model, "text_projection") else None
        if dim is None:
            dim = int(getattr(model.visual, "output_dim", 0))
        self.licence = licence
        self.architecture = architecture
        self._tokenizer = open_clip.get_tokenizer(architecture)
        model_id = id or f"clip-{architecture.lower()}"
        super().__init__(
            model,
            id=model_id,
            display_name=display_name or f"CLIP {architecture}",
            input_size=size,
            dim=dim,
            device=device,
            mean=mean,
            std=std,
            cache_key=cache_key
            or f"{model_id}@{size}/{'random' if weights_path is None else weights_file_tag(weights_path)}",
        )

    def _forward(self, x: Any) -> Any:
        return self.module.encode_image(x, normalize=True)

    def embed_text(self, texts: Sequence[str]) -> np.ndarray:
        """L2-normalised text embeddings float32 [n, dim], comparable with image embeddings by dot product."""
        if not texts:
            return np.zeros((0, self.dim), np.float32)
        tokens = self._tokenizer(list(texts))
        return self._run(lambda t: self.module.encode_text(t, normalize=True), tokens)
