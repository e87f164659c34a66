"""The one list of feature extractors that the CLI and the GUI both offer, and the factory behind it."""

from __future__ import annotations

from dataclasses import dataclass

from ..progress import CancelFlag, ProgressCallback, never_cancelled, no_progress
from . import classical, clip, cnn, efficientnet
from .base import Extractor
from .device import resolve_device

DEFAULT_MODEL = efficientnet.MODEL_ID

__all__ = ["DEFAULT_MODEL", "ModelInfo", "create", "get_info", "list_models", "resolve_device"]


@dataclass(frozen=True)
class ModelInfo:
    id: str
    display_name: str
    family: str  # "efficientnet" | "clip" | "cnn" | "classical"
    dim: int
    input_size: int
    needs_download: bool  # True while the weights are neither bundled nor already in the user cache
    licence: str
    description: str


def list_models() -> list[ModelInfo]:
    """Every model the app can use, default first; needs_download reflects the cache right now."""
    models = [
        ModelInfo(
            efficientnet.MODEL_ID,
            efficientnet.DISPLAY_NAME,
            "efficientnet",
            efficientnet.DIM,
            efficientnet.NATIVE_SIZE,
            False,
            efficientnet.LICENCE,
            "Fast ImageNet CNN whose weights ship with the app; the default, works offline.",
        )
    ]
    for model_id, spec in clip.CATALOGUE.items():
        models.append(
            ModelInfo(
                model_id,
                spec.display_name,
                "clip",
                spec.dim,
                spec.input_size,
                clip.needs_download(model_id),
                spec.licence,
                spec.description,
            )
        )
    for model_id, spec in cnn.CATALOGUE.items():
        models.append(
            ModelInfo(
                model_id,
                spec.display_name,
                "cnn",
                spec.dim,
                spec.input_size,
                cnn.needs_download(model_id),
                spec.licence,
                spec.description,
            )
        )
    for model_id, spec in classical.CATALOGUE.items():
        models.append(
            ModelInfo(
                model_id,
                spec.display_name,
                "classical",
                spec.dim(spec.input_size),
                spec.input_size,
                False,
                "n/a (no weights)",
                spec.description,
            )
        )
    return models


def get_info(model_id: str) -> ModelInfo:
    """The ModelInfo for one id; ValueError naming the known ids if there is none."""
    for info in list_models():
        if info.id == model_id:
            return info
    known = ", ".join(m.id for m in list_models())
    raise ValueError(f"unknown model {model_id!r}; choose one of: {known}")


def create(
    model_id: str,
    *,
    device: str = "auto",
    weights_path: str | None = None,
    layer: str | None = None,
    on_progress: ProgressCallback = no_progress,
    cancelled: CancelFlag = never_cancelled,
    input_size: int | None = None,
) -> Extractor:
    """Build an extractor; downloads missing weights (with progress/cancel) unless weights_path is given."""
    model_id = (model_id or DEFAULT_MODEL).lower()
    if model_id == efficientnet.MODEL_ID:
        return efficientnet.EfficientNetLite0(
            device=device, weights_path=weights_path, input_size=input_size, layer=layer
        )
    if model_id in clip.CATALOGUE:
        if layer:
            raise ValueError("CLIP models do not take a layer option")
        return clip.create(
            model_id,
            device=device,
            weights_path=weights_path,
            input_size=input_size,
            on_progress=on_progress,
            cancelled=cancelled,
        )
    if model_id in cnn.CATALOGUE:
        return cnn.create(
            model_id,
            device=device,
            weights_path=weights_path,
            layer=layer,
            input_size=input_size,
            on_progress=on_progress,
            cancelled=cancelled,
        )
    if model_id in classical.CATALOGUE:
        if layer or weights_path:
            raise ValueError(f"{model_id} has no weights or layers to choose")
        return classical.create(model_id, input_size=input_size)
    get_info(model_id)  # raises with the list of known ids
    raise AssertionError("unreachable")
