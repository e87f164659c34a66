"""Bytes to pixels: one image file -> RGB uint8 array + JPEG thumbnails, with a reason when it cannot.

Pixels come out the way a person sees the picture: EXIF orientation applied, transparency composited on
white, palette / LA / CMYK / 16-bit / float modes converted to RGB, grayscale repeated to three channels,
embedded ICC profiles converted to sRGB. Formats are recognised by content; HEIC/HEIF goes through
pillow-heif, registered the first time such a file is met.

Speed: JPEGs are decoded with Pillow's draft mode (the codec's DCT scaling by 1/2, 1/4 or 1/8) straight to
the smallest size that still covers what is needed; other large images are shrunk early with
`Image.reduce` (a cheap box filter) before the final high-quality resize.

Decompression bombs: an image whose header declares more than MAX_PIXELS pixels (178 MP, twice Pillow's
warning threshold) is skipped with a reason rather than decoded reduced, because only JPEG can be decoded
reduced without first allocating the full image, and a crafted PNG of that size would take gigabytes.

Any aspect ratio is kept: a panorama, a banner or a scanned strip (20 x 4000) is a picture like any
other. Its long edge is fitted like every image's (the short edge never below 1 px), and the models pad
it to their square input, so it is clustered, not skipped.
"""

from __future__ import annotations

import io
import math
import threading
import warnings
from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np

from .sources import describe_os_error, read_head, sniff

MAX_PIXELS = 178_956_970  # Pillow's DecompressionBombError threshold
THUMB_QUALITY = 85
JPEG_DRAFT = True  # switch for bench/ingest.py; decoding at reduced DCT scale is the fast path

# EXIF orientation -> the transpose that shows the picture upright
_ORIENTATION_TRANSPOSE = {2: 0, 3: 3, 4: 1, 5: 5, 6: 4, 7: 6, 8: 2}  # Image.Transpose values
_setup_lock = threading.Lock()
_setup_done = False
_heif_registered = False
_srgb_transforms: dict[tuple[bytes, str], object] = {}


class DecodeError(Exception):
    """str(e) is the person-readable reason the file was skipped."""


@dataclass
class Decoded:
    image: np.ndarray  # uint8 RGB [H, W, 3], long edge <= max_side (aspect kept)
    thumbnails: dict[int, bytes]  # {128: jpeg bytes, 256: jpeg bytes}, long edge = key
    original_size: tuple[int, int]  # (width, height) after EXIF orientation


def decode(path: str, *, max_side: int = 256, thumb_sizes: Sequence[int] = (128, 256)) -> Decoded:
    """Decode one file to RGB (long edge <= max_side) plus thumbnails; raises DecodeError with a reason."""
    from PIL import Image

    _setup()
    try:
        head = read_head(path)
    except OSError as error:
        raise DecodeError(describe_os_error(error)) from None
    if not head:
        raise DecodeError("empty file (0 bytes)")
    image_format, other = sniff(head)
    if other is not None:
        raise DecodeError(f"not an image: looks like {other}")
    if image_format == "HEIF":
        _register_heif()
    try:
        with Image.open(path) as im:
            return _decode_open(im, max_side, tuple(thumb_sizes))
    except DecodeError:
        raise
    except Image.DecompressionBombError as error:
        raise DecodeError(f"too large to decode safely (possible decompression bomb): {error}") from None
    except (FileNotFoundError, PermissionError, IsADirectoryError) as error:
        raise DecodeError(describe_os_error(error)) from None
    except Image.UnidentifiedImageError:
        if image_format:
            raise DecodeError(f"corrupt {image_format}: the header is damaged and cannot be read") from None
        raise DecodeError("not an image: unrecognised file contents") from None
    except MemoryError:
        raise DecodeError("not enough memory to decode this image") from None
    except Exception as error:  # codecs raise OSError, ValueError, SyntaxError, struct.error, ...
        raise DecodeError(_failure_reason(image_format, error)) from None


def _decode_open(im, max_side: int, thumb_sizes: tuple[int, ...]) -> Decoded:
    from PIL import Image

    width, height = im.size
    if width < 1 or height < 1:
        raise DecodeError(f"the image has no pixels ({width} × {height})")
    if width * height > MAX_PIXELS:
        raise DecodeError(
            f"too large to decode safely: {width} × {height} pixels ({width * height / 1e6:.0f} MP, "
            f"limit {MAX_PIXELS / 1e6:.0f} MP); possibly a decompression bomb"
        )
    work_side = max([max_side, *thumb_sizes])
    if JPEG_DRAFT and im.format in ("JPEG", "MPO"):
        scale = work_side / max(width, height)
        if scale < 1:
            # ask for the aspect-matched box so DCT scaling reduces as far as the long edge allows
            im.draft(im.mode, (math.ceil(width * scale), math.ceil(height * scale)))
    im.load()
    # EXIF is read after load: for PNG, getexif() would load the pixels itself and hide decode errors
    orientation = _orientation(im)
    original_size = (height, width) if orientation in (5, 6, 7, 8) else (width, height)
    icc = im.info.get("icc_profile")
    im = _to_basic_mode(im)
    im = _shrink(im, work_side)
    if orientation in _ORIENTATION_TRANSPOSE:
        im = im.transpose(Image.Transpose(_ORIENTATION_TRANSPOSE[orientation]))
    im = _flatten_alpha(im)
    if icc and im.mode in ("RGB", "L", "CMYK"):
        im = _to_srgb(im, icc)
    if im.mode != "RGB":
        im = im.convert("RGB")
    thumbnails: dict[int, bytes] = {}
    source, encoded = im, None
    for size in sorted(thumb_sizes, reverse=True):  # each thumbnail from the next larger one: cheaper
        # Never enlarged: a 28 px source gives a 28 px thumbnail under both sizes (widgets scale it up when
        # they paint). Enlarging cost 3.3 ms and 8.6 KB per Fashion-MNIST image, 12 times its decoding.
        smaller = _shrink(source, size)
        if smaller is not source or encoded is None:
            source, encoded = smaller, _jpeg_bytes(smaller)
        thumbnails[size] = encoded
    image = _shrink(im, max_side)
    return Decoded(np.asarray(image), dict(sorted(thumbnails.items())), original_size)


def _setup() -> None:
    global _setup_done
    if _setup_done:
        return
    with _setup_lock:
        from PIL import Image

        # bombs are handled explicitly above; Pillow's warning between 89 and 178 MP is noise
        warnings.filterwarnings("ignore", category=Image.DecompressionBombWarning)
        _setup_done = True


def _register_heif() -> None:
    global _heif_registered
    if _heif_registered:
        return
    with _setup_lock:
        if not _heif_registered:
            try:
                from pillow_heif import register_heif_opener
            except ImportError:
                raise DecodeError("HEIC/HEIF support (the pillow-heif package) is not installed") from None
            register_heif_opener()
            _heif_registered = True


def _orientation(im) -> int:
    try:
        return int(im.getexif().get(0x0112, 1) or 1)
    except Exception:  # corrupt EXIF must not cost the picture
        return 1


def _to_basic_mode(im):
    """Reduce Pillow's many modes to RGB, RGBA, L, LA or CMYK (all 8-bit)."""
    from PIL import Image

    mode = im.mode
    if mode in ("RGB", "RGBA", "L", "LA", "CMYK"):
        return im
    if mode == "P":
        return im.convert("RGBA" if "transparency" in im.info else "RGB")
    if mode in ("PA", "RGBa", "RGBX"):
        return im.convert("RGBA" if mode != "RGBX" else "RGB")
    if mode == "La":
        return im.convert("LA")
    if mode == "1":
        return im.convert("L")
    if mode.startswith("I") or mode.startswith("F"):
        return Image.fromarray(_to_uint8(np.asarray(im)), "L")
    return im.convert("RGB")  # YCbCr, LAB, HSV


def _to_uint8(values: np.ndarray) -> np.ndarray:
    """Map integer or float samples of any range to 0..255 the way a viewer would show them."""
    if values.dtype == np.uint8:
        return values
    if values.dtype == np.bool_:
        return values.astype(np.uint8) * 255
    data = values.astype(np.float32)
    finite = np.isfinite(data)
    data = np.where(finite, data, 0.0)
    low, high = (float(data[finite].min()), float(data[finite].max())) if finite.any() else (0.0, 0.0)
    if values.dtype.kind == "u" and values.dtype.itemsize == 2:
        data = data / 257.0  # 16-bit samples: a dark 16-bit picture stays dark
    elif values.dtype.kind == "f" and low >= 0 and high <= 1.0:
        data = data * 255.0
    elif low >= 0 and high <= 255:
        pass
    elif values.dtype.kind in "iu" and low >= 0 and high <= 65535:
        data = data / 257.0  # 16-bit samples held in a wider integer (Pillow's "I" mode)
    else:
        data = (data - low) * (255.0 / (high - low))  # arbitrary range: stretch to fit
    return np.clip(np.rint(data), 0, 255).astype(np.uint8)


def _shrink(im, side: int):
    """Long edge down to `side` (never up): a cheap box reduce first, then an antialiased resize."""
    from PIL import Image

    width, height = im.size
    longest = max(width, height)
    if longest <= side:
        return im
    factor = longest // (2 * side)  # keep >= 2x the target for the quality resize
    if factor >= 2:
        im = im.reduce(factor)
    return fit_long_edge(im, side, Image.Resampling.BICUBIC)


def fit_long_edge(im, side: int, resample=None):
    """Resize so the long edge is exactly `side`, up or down (aspect kept, each edge >= 1 px)."""
    from PIL import Image

    width, height = im.size
    if max(width, height) == side:
        return im
    scale = side / max(width, height)
    size = (max(1, round(width * scale)), max(1, round(height * scale)))
    return im.resize(size, resample if resample is not None else Image.Resampling.BICUBIC)


def _flatten_alpha(im):
    """Composite transparent pixels on white, as a viewer's page background would show them."""
    from PIL import Image

    if im.mode not in ("RGBA", "LA"):
        return im
    base_mode = im.mode[:-1]
    background = Image.new(base_mode, im.size, 255 if base_mode == "L" else (255, 255, 255))
    background.paste(im.convert(base_mode), mask=im.getchannel("A"))
    return background


def _to_srgb(im, icc: bytes):
    """Convert pixels tagged with an ICC profile to sRGB; unusable profiles are ignored."""
    from PIL import ImageCms

    cache_key = (icc, im.mode)
    transform = _srgb_transforms.get(cache_key)
    if transform is None:
        try:
            source = ImageCms.ImageCmsProfile(io.BytesIO(icc))
            description = ImageCms.getProfileDescription(source) or ""
            if im.mode == "RGB" and "srgb" in description.lower():
                transform = False  # already sRGB: skip the transform cost
            else:
                target = ImageCms.createProfile("sRGB")
                transform = ImageCms.buildTransform(source, target, im.mode, "RGB")
        except (ImageCms.PyCMSError, OSError, ValueError, TypeError):
            transform = False
        if len(_srgb_transforms) < 64:
            _srgb_transforms[cache_key] = transform
    if transform is False:
        return im
    try:
        return ImageCms.applyTransform(im, transform)
    except (ImageCms.PyCMSError, OSError, ValueError):
        return im


def _jpeg_bytes(im) -> bytes:
    buffer = io.BytesIO()
    im.save(buffer, "JPEG", quality=THUMB_QUALITY)
    return buffer.getvalue()


def _failure_reason(image_format: str | None, error: BaseException) -> str:
    name = image_format or "image"
    message = str(error).lower()
    if isinstance(error, EOFError) or any(
        word in message for word in ("truncated", "premature end", "unexpected end", "ends early", "eof")
    ):
        return f"truncated {name}: the file ends early"
    detail = str(error).strip() or type(error).__name__
    return f"corrupt {name}: the image data cannot be decoded ({detail})"


def load_array_images(arr: np.ndarray) -> list[np.ndarray]:
    """Numpy input (N,H,W[,C]) of any dtype -> list of RGB uint8 [H, W, 3]; alpha composited on white."""
    if isinstance(arr, (list, tuple)):
        return [image for item in arr for image in load_array_images(np.asarray(item)[None])]
    arr = np.asarray(arr)
    if arr.ndim == 3:
        arr = arr[..., None]
    if arr.ndim != 4 or arr.shape[-1] not in (1, 2, 3, 4) or 0 in arr.shape[1:3]:
        raise ValueError(
            f"expected images as (N, H, W) or (N, H, W, C) with C in 1..4, got shape {arr.shape}; "
            "flattened images need reshaping to (N, H, W) first"
        )
    data = _to_uint8(arr)  # one scale for the whole array, so images stay comparable
    channels = data.shape[-1]
    if channels in (2, 4):
        alpha = data[..., -1:].astype(np.float32) / 255.0
        colour = data[..., :-1].astype(np.float32)
        data = np.rint(colour * alpha + 255.0 * (1.0 - alpha)).astype(np.uint8)
    if data.shape[-1] == 1:
        data = np.repeat(data, 3, axis=-1)
    return [np.ascontiguousarray(image) for image in data]
