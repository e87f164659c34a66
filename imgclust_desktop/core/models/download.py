"""Fetch model weights once into the user cache, with progress, cancel and an atomic finish."""

from __future__ import annotations

import hashlib
import os
import urllib.request
from pathlib import Path

from ..progress import CancelFlag, Cancelled, ProgressCallback, RateMeter, never_cancelled, no_progress

CHUNK = 1 << 20  # 1 MiB: a cancel is noticed well within a second even on slow links


class DownloadError(Exception):
    """A download failed; str(e) says why in words a person understands."""


def weights_dir() -> Path:
    """Folder holding downloaded weights: <user cache>/imgclust-desktop/weights (IMGCLUST_CACHE_DIR overrides)."""
    root = os.environ.get("IMGCLUST_CACHE_DIR")
    if not root:
        import platformdirs

        root = platformdirs.user_cache_dir("imgclust-desktop", appauthor=False)
    return Path(root) / "weights"


def cached_weights(filename: str) -> Path | None:
    """The downloaded file if it is already complete in the weights folder, else None."""
    path = weights_dir() / filename
    return path if path.is_file() and path.stat().st_size > 0 else None


def download(
    url: str,
    filename: str,
    *,
    sha256_prefix: str | None = None,
    on_progress: ProgressCallback = no_progress,
    cancelled: CancelFlag = never_cancelled,
    timeout: float = 30.0,
) -> Path:
    """Download url to weights_dir()/filename unless already there; returns the final path."""
    target = weights_dir() / filename
    if target.is_file() and target.stat().st_size > 0:
        return target
    target.parent.mkdir(parents=True, exist_ok=True)
    partial = target.with_name(target.name + ".part")
    digest = hashlib.sha256()
    try:
        with urllib.request.urlopen(url, timeout=timeout) as response:
            total = int(response.headers.get("Content-Length") or 0)
            meter = RateMeter(f"downloading {filename}", total, on_progress)
            done = 0
            with open(partial, "wb") as out:
                while True:
                    if cancelled():
                        raise Cancelled()
                    chunk = response.read(CHUNK)
                    if not chunk:
                        break
                    out.write(chunk)
                    digest.update(chunk)
                    done += len(chunk)
                    meter.update(done, f"{done / 2**20:.0f} of {total / 2**20:.0f} MiB" if total else "")
            if total and done != total:
                raise DownloadError(f"download of {filename} stopped early ({done} of {total} bytes)")
            meter.total = max(total, done)
            meter.update(done, force=True)
    except Cancelled:
        partial.unlink(missing_ok=True)
        raise
    except DownloadError:
        partial.unlink(missing_ok=True)
        raise
    except OSError as error:  # URLError, timeouts and disk errors are all OSError
        partial.unlink(missing_ok=True)
        raise DownloadError(f"could not download {filename} from {url}: {error}") from error
    if sha256_prefix and not digest.hexdigest().startswith(sha256_prefix.lower()):
        partial.unlink(missing_ok=True)
        raise DownloadError(f"{filename} arrived damaged (checksum mismatch); please try again")
    os.replace(partial, target)  # atomic: a half-written file never looks complete
    return target
