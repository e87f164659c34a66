"""Object-store inputs (s3://, gs://, abfs://, file://, ...) through pyarrow's filesystems.

Listing gives each object a FileIdentity (URL, size, mtime), so cache keys and shard ids work as for local
files. Checking and decoding run the very code a local file goes through: the object's bytes are written
to a temporary file that keeps the object's name, then `sources.check_candidate` and `decode.decode` read
it, so a remote file is skipped for the same reason, in the same words, as the same file on disk.
Credentials are pyarrow's (environment, ~/.aws, instance roles): nothing here asks for or stores any.
"""

from __future__ import annotations

import functools
import os
import tempfile
from collections.abc import Sequence

from .progress import CancelFlag, check_cancel, never_cancelled
from .sources import FileIdentity, ScanResult, Skipped, _selected


def is_url(path: str) -> bool:
    """True for 'scheme://...' inputs (object stores), False for plain paths."""
    head = str(path).split("://", 1)[0]
    return "://" in str(path) and head.isalpha() and len(head) > 1


@functools.lru_cache(maxsize=16)
def _filesystem(scheme_and_host: str):
    from pyarrow import fs

    return fs.FileSystem.from_uri(scheme_and_host)[0]


def _split(url: str) -> tuple[object, str, str]:
    """(filesystem, path inside it, URL prefix that turns such a path back into a URL)."""
    from pyarrow import fs as pafs

    scheme, rest = url.split("://", 1)
    if scheme == "file":
        return pafs.LocalFileSystem(), rest, "file://"
    # S3 / GCS paths are "bucket/key": one filesystem object per bucket, made once per process
    return _filesystem(f"{scheme}://{rest.split('/', 1)[0]}"), rest.rstrip("/"), f"{scheme}://"


def scan_urls(
    urls: Sequence[str],
    *,
    include: Sequence[str] = (),
    exclude: Sequence[str] = (),
    cancelled: CancelFlag = never_cancelled,
) -> ScanResult:
    """List objects under each URL (recursively); names and sizes are judged here, contents when decoded."""
    from pyarrow import fs as pafs

    found: dict[str, FileIdentity] = {}
    skipped: dict[str, Skipped] = {}
    for url in urls:
        check_cancel(cancelled)
        filesystem, root, prefix = _split(url)
        info = filesystem.get_file_info(root)
        if info.type == pafs.FileType.NotFound:
            skipped[url] = Skipped(url, "input not found")
            continue
        if info.type == pafs.FileType.Directory:
            infos = filesystem.get_file_info(pafs.FileSelector(root, recursive=True))
        else:
            infos = [info]
        for entry in infos:
            if entry.type != pafs.FileType.File:
                continue
            relative = os.path.relpath(entry.path, root) if entry.path != root else entry.base_name
            if any(part.startswith(".") for part in relative.split("/")[:-1]):
                continue  # inside a hidden folder: a local scan does not search those either
            if not _selected(relative, include, exclude):
                continue
            full = prefix + entry.path
            if entry.size == 0:
                skipped[full] = Skipped(full, "empty file (0 bytes)")
            else:
                found[full] = FileIdentity(full, int(entry.size), int(entry.mtime_ns or 0))
    files = sorted(found.values(), key=lambda f: f.path)
    return ScanResult(files, sorted(skipped.values(), key=lambda s: s.path))


def read_bytes(url: str) -> bytes:
    """The whole object (raises OSError when it cannot be read)."""
    filesystem, path, _ = _split(url)
    with filesystem.open_input_stream(path) as stream:
        return stream.read()


def decode_url(identity: FileIdentity, max_side: int):
    """Decoded | Skipped for one object, through the local check and decode code (see module doc)."""
    from .decode import DecodeError, decode
    from .sources import check_candidate, describe_os_error

    try:
        data = read_bytes(identity.path)
    except FileNotFoundError:
        return Skipped(
            identity.path, "the file no longer exists (deleted or moved after the folder was scanned)"
        )
    except OSError as error:
        return Skipped(identity.path, describe_os_error(error))
    if len(data) != identity.size:
        return Skipped(identity.path, "the file changed while it was being read; scan again to include it")
    name = identity.path.rstrip("/").rsplit("/", 1)[-1]
    shm = "/dev/shm" if os.path.isdir("/dev/shm") else None
    with tempfile.TemporaryDirectory(prefix="imgclust-obj-", dir=shm) as folder:
        local = os.path.join(folder, name)
        with open(local, "wb") as handle:
            handle.write(data)
        checked = check_candidate(local)
        if isinstance(checked, Skipped):
            return Skipped(identity.path, checked.reason)
        try:
            return decode(local, max_side=max_side)
        except DecodeError as error:
            return Skipped(identity.path, str(error))
        except Exception as error:  # a codec bug on one odd file must not stop the run
            return Skipped(identity.path, f"could not be decoded ({type(error).__name__}: {error})")


def open_input(url: str):
    """A binary file object for an object-store URL (what pipeline.median_long_edge reads headers from)."""
    filesystem, path, _ = _split(url)
    return filesystem.open_input_file(path)
