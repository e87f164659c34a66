"""Feature extractors behind one interface, listed in one registry (torch is imported only on create)."""

from .base import Extractor
from .device import recommended_batch_size
from .registry import DEFAULT_MODEL, ModelInfo, create, get_info, list_models, resolve_device

__all__ = [
    "DEFAULT_MODEL",
    "Extractor",
    "ModelInfo",
    "create",
    "get_info",
    "list_models",
    "recommended_batch_size",
    "resolve_device",
]
