"""Where inference runs: device choice, precision, CPU threads and batch sizes."""

from __future__ import annotations

import os
from typing import Any

_threads_configured = False


def resolve_device(device: str = "auto") -> str:
    """Turn "auto" into "cuda" > "mps" > "cpu"; pass an explicit device through after checking it exists."""
    import torch

    device = (device or "auto").lower()
    if device == "auto":
        if torch.cuda.is_available():
            return "cuda"
        mps = getattr(torch.backends, "mps", None)
        if mps is not None and mps.is_available():
            return "mps"
        return "cpu"
    if device.startswith("cuda") and not torch.cuda.is_available():
        raise ValueError(f"device {device!r} was asked for but no CUDA GPU is available")
    if device == "mps" and not (getattr(torch.backends, "mps", None) and torch.backends.mps.is_available()):
        raise ValueError("device 'mps' was asked for but Apple Metal is not available")
    if device != "cpu" and not device.startswith(("cuda", "mps")):
        raise ValueError(f"unknown device {device!r}: use auto, cpu, cuda or mps")
    return device


def available_cpus() -> int:
    """CPU cores this process may run on (respects affinity masks and container limits)."""
    try:
        return max(1, len(os.sched_getaffinity(0)))
    except AttributeError:  # macOS / Windows
        return max(1, os.cpu_count() or 1)


def configure_cpu_threads() -> int:
    """Cap torch's intra-op threads at the usable cores once; returns the thread count.

    Not at the cores idle right now: a thread count that follows the machine's load would make the same
    image's features differ in the last bits from one run to the next (a convolution's sums are split
    by thread), and the feature cache and the automatic level must not depend on what else was running.
    """
    import torch

    global _threads_configured
    if not _threads_configured:
        # torch defaults to every core of the host; inside a container or with affinity set that
        # oversubscribes and is slower. Decoding runs in its own threads, so no headroom is reserved:
        # they mostly wait on I/O and the GIL-free PIL codecs.
        wanted = available_cpus()
        if torch.get_num_threads() != wanted:
            torch.set_num_threads(wanted)
        _threads_configured = True
    return torch.get_num_threads()


def autocast_dtype(device: str) -> Any:
    """Lower precision used on accelerators (bf16 where supported, else fp16); None on CPU."""
    import torch

    if device.startswith("cuda"):
        return torch.bfloat16 if torch.cuda.is_bf16_supported() else torch.float16
    if device == "mps":
        return torch.float16
    return None  # CPU autocast to bf16 is slower than fp32 on most CPUs and costs accuracy


def is_out_of_memory(error: BaseException) -> bool:
    """True for CUDA/MPS allocation failures, which are worth retrying with a smaller batch."""
    import torch

    if isinstance(error, torch.OutOfMemoryError):
        return True
    return isinstance(error, RuntimeError) and "out of memory" in str(error).lower()


def free_accelerator_memory(device: str) -> None:
    """Release cached blocks after an OOM so the retry has room."""
    import torch

    if device.startswith("cuda"):
        torch.cuda.empty_cache()
    elif device == "mps" and hasattr(torch, "mps"):
        torch.mps.empty_cache()


def recommended_batch_size(extractor: Any) -> int:
    """A batch size that keeps the device busy without running out of memory."""
    side = int(getattr(extractor, "input_size", 224) or 224)
    # Activation memory grows with the pixel count; 224 px is the reference.
    scale = max(1.0, (224 * 224) / float(side * side))
    device = getattr(extractor, "device", "cpu")
    if device == "cpu" or not hasattr(extractor, "parameter_count"):
        # On CPU big batches are slower per image: their activations fall out of the caches. Measured with
        # EfficientNet-Lite0 at 224 px on 2 EPYC cores: 74-104 images/s at batch 4-16, 45-55 at batch 32.
        # Classical extractors are per-image anyway.
        base = 8
    else:
        base = _accelerator_batch(device, extractor.parameter_count())
    ceiling = int(getattr(extractor, "max_batch_size", 0) or 0)  # lowered after an OOM
    size = int(min(1024, base * scale))
    return max(1, min(size, ceiling) if ceiling else size)


def _accelerator_batch(device: str, parameter_count: int) -> int:
    import torch

    if device.startswith("cuda"):
        free, _total = torch.cuda.mem_get_info()
        free_gib = free / 2**30
    else:
        free_gib = 4.0  # MPS shares system memory and reports nothing useful; stay modest
    # ~40 MiB of activations per 224 px image for a 25M-parameter CNN in half precision; bigger models
    # (ViT-L) scale roughly with their parameter count.
    per_image_gib = 0.04 * max(1.0, parameter_count / 25e6)
    return int(max(8, min(512, free_gib * 0.5 / per_image_gib)))
