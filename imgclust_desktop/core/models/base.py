"""The extractor interface every model family implements, and the shared torch machinery."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any, Protocol, runtime_checkable

import numpy as np

from . import device as devices

IMAGENET_MEAN = (0.485, 0.456, 0.406)
IMAGENET_STD = (0.229, 0.224, 0.225)
# How a non-square image becomes the square network input. "pad" (the default) keeps the whole picture
# undistorted: for clustering, content cut off by a centre crop (44% of a 16:9 frame) is information lost,
# and squashing changes shapes the CNN keys on. The padding is the mean colour, i.e. exactly zero after
# normalisation, so it adds no edges of its own. "crop" matches ImageNet-style evaluation; "squash"
# matches clustimage.
FITS = ("pad", "crop", "squash")


@runtime_checkable
class Extractor(Protocol):
    """Turns RGB images into feature vectors: `embed(preprocess(images))` -> float32 [n, dim]."""

    id: str
    display_name: str
    input_size: int
    dim: int
    needs_download: bool
    licence: str
    cache_key: str

    def preprocess(self, images: Sequence[np.ndarray]) -> Any: ...

    def embed(self, batch: Any) -> np.ndarray: ...


def as_rgb_uint8(image: np.ndarray) -> np.ndarray:
    """Coerce gray, gray+alpha, RGBA or float arrays to uint8 RGB [H, W, 3]."""
    image = np.asarray(image)
    if image.ndim == 3 and image.shape[2] == 1:
        image = image[:, :, 0]
    if image.dtype != np.uint8:
        # floats in [0, 1] are the common non-uint8 case (skimage, normalised arrays)
        scale = 255.0 if image.dtype.kind == "f" and image.size and float(np.nanmax(image)) <= 1.0 else 1.0
        image = np.clip(np.nan_to_num(image.astype(np.float32) * scale), 0, 255).astype(np.uint8)
    if image.ndim == 2:
        return np.repeat(image[:, :, None], 3, axis=2)
    if image.ndim != 3 or image.shape[2] not in (2, 3, 4) or min(image.shape[:2]) < 1:
        raise ValueError(f"not an image array: shape {image.shape}")
    if image.shape[2] == 2:
        return np.repeat(image[:, :, :1], 3, axis=2)
    return np.ascontiguousarray(image[:, :, :3])


def fit_square(
    image: np.ndarray, size: int, fit: str = "pad", fill: Sequence[float] = (0, 0, 0)
) -> np.ndarray:
    """Resize an RGB uint8 image to size x size: pad (aspect kept), crop (centre) or squash."""
    from PIL import Image

    h, w = image.shape[:2]
    pil = Image.fromarray(image)
    if fit == "squash" or h == w:
        return np.asarray(pil.resize((size, size), Image.BICUBIC))
    if fit == "crop":
        scale = size / min(h, w)
        nw, nh = max(size, round(w * scale)), max(size, round(h * scale))
        left, top = (nw - size) // 2, (nh - size) // 2
        return np.asarray(pil.resize((nw, nh), Image.BICUBIC).crop((left, top, left + size, top + size)))
    if fit != "pad":
        raise ValueError(f"unknown fit {fit!r}: use one of {FITS}")
    scale = size / max(h, w)
    nw, nh = max(1, round(w * scale)), max(1, round(h * scale))
    canvas = np.empty((size, size, 3), np.uint8)
    canvas[:] = np.asarray(fill, np.float32).round().astype(np.uint8)
    top, left = (size - nh) // 2, (size - nw) // 2
    canvas[top : top + nh, left : left + nw] = np.asarray(pil.resize((nw, nh), Image.BICUBIC))
    return canvas


def weights_file_tag(path: str) -> str:
    """Identity of a weights file for cache keys (name + digest of path, size, mtime); ValueError if missing."""
    import hashlib
    import os

    try:
        st = os.stat(path)
    except OSError as error:
        raise ValueError(f"weights file {path} cannot be opened: {error.strerror}") from error
    digest = hashlib.sha1(f"{os.path.abspath(path)}|{st.st_size}|{st.st_mtime_ns}".encode()).hexdigest()[:12]
    return f"{os.path.basename(path)}:{digest}"


class TorchExtractor:
    """Shared base: normalised NCHW batches, device placement, autocast, OOM-halving `embed`."""

    has_text = False
    needs_download = False
    licence = ""

    def __init__(
        self,
        module: Any,
        *,
        id: str,
        display_name: str,
        input_size: int,
        dim: int,
        device: str = "auto",
        mean: Sequence[float] = IMAGENET_MEAN,
        std: Sequence[float] = IMAGENET_STD,
        fit: str = "pad",
        cache_key: str | None = None,
    ) -> None:
        import torch

        if fit not in FITS:
            raise ValueError(f"unknown fit {fit!r}: use one of {FITS}")
        self.id, self.display_name = id, display_name
        self.input_size, self.dim, self.fit = int(input_size), int(dim), fit
        self.mean = np.asarray(mean, np.float32)
        self.std = np.asarray(std, np.float32)
        self.device = devices.resolve_device(device)
        if self.device == "cpu":
            devices.configure_cpu_threads()
        self.cache_key = cache_key or f"{id}@{self.input_size}"
        self.max_batch_size = 0  # 0 = no limit learned yet; set after an out-of-memory retry
        self._autocast = devices.autocast_dtype(self.device)
        # channels-last on every device: on the CPU too, EfficientNet-Lite0 ran 1.5-1.7x faster with it
        # (2 cores, 224 px batch 8: 21 -> 36 images/s; 64 px batch 32: 624 -> 804), same features to 1e-5
        self.module = module.eval().to(self.device).to(memory_format=torch.channels_last)

    def parameter_count(self) -> int:
        """Number of weights, used to size GPU batches."""
        return sum(p.numel() for p in self.module.parameters())

    def preprocess(self, images: Sequence[np.ndarray]) -> Any:
        """RGB uint8 arrays -> normalised float32 tensor [n, 3, S, S] on the CPU."""
        import torch

        # pad with the mean colour so the padding is exactly zero after normalisation
        fill = self.mean * 255.0
        squares = [fit_square(as_rgb_uint8(im), self.input_size, self.fit, fill) for im in images]
        batch = (
            np.stack(squares).astype(np.float32)
            if squares
            else np.zeros((0, self.input_size, self.input_size, 3), np.float32)
        )
        batch = (batch * (1.0 / 255.0) - self.mean) / self.std
        return torch.from_numpy(np.ascontiguousarray(batch.transpose(0, 3, 1, 2)))

    def embed(self, batch: Any) -> np.ndarray:
        """Features for a preprocessed batch as float32 [n, dim]; halves the batch on out-of-memory."""
        if len(batch) == 0:
            return np.zeros((0, self.dim), np.float32)
        step = self.max_batch_size or len(batch)
        parts, start = [], 0
        while start < len(batch):
            chunk = batch[start : start + step]
            try:
                parts.append(self._run(self._forward, chunk))
            except Exception as error:
                if not devices.is_out_of_memory(error) or step == 1:
                    raise
                devices.free_accelerator_memory(self.device)
                step = max(1, step // 2)
                self.max_batch_size = step
                continue
            start += len(chunk)
        return np.concatenate(parts).astype(np.float32, copy=False)

    def _run(self, fn: Any, batch: Any) -> np.ndarray:
        import torch

        with torch.inference_mode():
            x = batch.to(self.device, non_blocking=True)
            if x.ndim == 4:
                x = x.contiguous(memory_format=torch.channels_last)
            if self._autocast is not None:
                with torch.autocast(device_type=self.device.split(":")[0], dtype=self._autocast):
                    out = fn(x)
            else:
                out = fn(x)
            return out.float().cpu().numpy()

    def _forward(self, x: Any) -> Any:
        raise NotImplementedError
