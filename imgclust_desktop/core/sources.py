"""Find image files in folders and file lists; identity (path, size, mtime) and content sniffing.

A file is an image candidate when its first bytes look like an image format (magic bytes), or when it has
an image extension and unrecognised contents that Pillow may still read. Everything else is skipped with a
reason a person understands: empty files, other document types, hidden files and macOS `._` resource
forks, unreadable files, symlink loops, missing inputs. Nothing here opens a file for writing.
"""

from __future__ import annotations

import fnmatch
import hashlib
import os
import stat
from collections.abc import Sequence
from dataclasses import dataclass, field

from .progress import CancelFlag, ProgressCallback, RateMeter, check_cancel, never_cancelled, no_progress

HEAD_BYTES = 64

# Extensions Pillow (plus pillow-heif) decodes to pixels; PDF/EPS/HDF stubs are deliberately absent.
IMAGE_EXTENSIONS = frozenset(
    ".jpg .jpeg .jpe .jfif .png .apng .gif .bmp .dib .tif .tiff .webp .heic .heif .hif .avif .avifs .ico "
    ".cur .icns .pbm .pgm .ppm .pnm .pfm .pcx .tga .sgi .rgb .rgba .bw .qoi .dds .psd .jp2 .j2k .jpx .jpf "
    ".j2c .jpc .mpo .blp .ras .xbm .xpm .msp .fli .flc .im .dcx .pcd .pxr .ftc .ftu .gbr .icb .vda "
    ".vst".split()
)

# (prefix, offset, kind, name): kind "image" is decodable, anything else is "other" with a description.
_IMAGE_MAGIC: list[tuple[bytes, int, str]] = [
    (b"\xff\xd8\xff", 0, "JPEG"),
    (b"\x89PNG\r\n\x1a\n", 0, "PNG"),
    (b"GIF87a", 0, "GIF"),
    (b"GIF89a", 0, "GIF"),
    (b"BM", 0, "BMP"),
    (b"II*\x00", 0, "TIFF"),
    (b"MM\x00*", 0, "TIFF"),
    (b"II+\x00", 0, "TIFF"),
    (b"MM\x00+", 0, "TIFF"),
    (b"8BPS", 0, "PSD"),
    (b"\x00\x00\x01\x00", 0, "ICO"),
    (b"\x00\x00\x02\x00", 0, "CUR"),
    (b"icns", 0, "ICNS"),
    (b"qoif", 0, "QOI"),
    (b"DDS ", 0, "DDS"),
    (b"\x00\x00\x00\x0cjP  \r\n\x87\n", 0, "JPEG 2000"),
    (b"\xff\x4f\xff\x51", 0, "JPEG 2000"),
    (b"\x0a\x05\x01", 0, "PCX"),
    (b"\x01\xda", 0, "SGI"),
    (b"\x59\xa6\x6a\x95", 0, "Sun raster"),
]
_HEIF_BRANDS = {b"heic", b"heix", b"hevc", b"hevx", b"heim", b"heis", b"mif1", b"msf1", b"avif", b"avis"}
_OTHER_MAGIC: list[tuple[bytes, str]] = [
    (b"%PDF", "a PDF document"),
    (b"%!PS", "a PostScript document"),
    (b"PK\x03\x04", "a ZIP archive (or an Office document)"),
    (b"PK\x05\x06", "an empty ZIP archive"),
    (b"\x1f\x8b", "a gzip archive"),
    (b"7z\xbc\xaf\x27\x1c", "a 7-Zip archive"),
    (b"Rar!", "a RAR archive"),
    (b"BZh", "a bzip2 archive"),
    (b"\xfd7zXZ\x00", "an xz archive"),
    (b"\x7fELF", "a program (ELF executable)"),
    (b"MZ", "a Windows program"),
    (b"\xca\xfe\xba\xbe", "a Java class or macOS program"),
    (b"\xd0\xcf\x11\xe0", "an old Microsoft Office document"),
    (b"SQLite format 3", "an SQLite database"),
    (b"\x93NUMPY", "a NumPy array file"),
    (b"\x89HDF", "an HDF5 data file"),
    (b"ID3", "an MP3 audio file"),
    (b"OggS", "an Ogg audio/video file"),
    (b"fLaC", "a FLAC audio file"),
    (b"\x1aE\xdf\xa3", "a Matroska/WebM video"),
    (b"\x00\x05\x16\x07", "a macOS resource fork (AppleDouble '._' file)"),
    (b"\x00\x05\x16\x00", "a macOS resource fork (AppleSingle file)"),
    (b"bplist", "a macOS property list"),
    (b"\x00\x00\x00\x01Bud1", "a macOS folder settings file (.DS_Store)"),
]


@dataclass(frozen=True)
class FileIdentity:
    path: str  # absolute, as found on disk (not resolved through symlinks)
    size: int
    mtime_ns: int

    def key(self) -> str:
        """Stable hex digest of (path, size, mtime_ns): the cache key."""
        text = f"{self.path}\0{self.size}\0{self.mtime_ns}"
        return hashlib.blake2b(text.encode("utf-8", "surrogateescape"), digest_size=16).hexdigest()


@dataclass(frozen=True)
class Skipped:
    path: str
    reason: str  # a sentence a person understands


@dataclass
class ScanResult:
    files: list[FileIdentity] = field(default_factory=list)  # sorted by path, de-duplicated
    skipped: list[Skipped] = field(default_factory=list)


def sniff(head: bytes) -> tuple[str | None, str | None]:
    """(image format, None) for image bytes, (None, description) for known non-images, else (None, None)."""
    for magic, offset, name in _IMAGE_MAGIC:
        if head[offset : offset + len(magic)] == magic:
            return name, None
    if head[:4] == b"RIFF" and head[8:12] == b"WEBP":
        return "WebP", None
    if head[:4] == b"RIFF" and head[8:12] in (b"WAVE", b"AVI "):
        return None, "a WAV audio file" if head[8:12] == b"WAVE" else "an AVI video"
    if head[4:8] == b"ftyp":
        brand = head[8:12]
        if brand in _HEIF_BRANDS:
            return ("AVIF" if brand.startswith(b"avi") else "HEIF"), None
        return None, "a video (MP4/QuickTime)"
    if len(head) >= 2 and head[:1] == b"P" and head[1:2] in b"1234567f" and head[2:3] in b" \t\r\n":
        return "PNM", None
    for magic, description in _OTHER_MAGIC:
        if head.startswith(magic):
            return None, description
    stripped = head.lstrip(b"\xef\xbb\xbf \t\r\n").lower()
    if stripped.startswith((b"<!doctype html", b"<html")):
        return None, "a web page (HTML)"
    if stripped.startswith(b"<svg") or (stripped.startswith(b"<?xml") and b"<svg" in head.lower()):
        return None, "an SVG drawing (vector graphics are not supported)"
    if stripped.startswith(b"<?xml"):
        return None, "an XML document"
    if stripped.startswith((b"{", b"[")):
        return None, "a JSON or text file"
    if head and _looks_like_text(head):
        return None, "a text file"
    return None, None


def _looks_like_text(head: bytes) -> bool:
    try:
        text = head.decode("utf-8")
    except UnicodeDecodeError:
        # a multi-byte character may be cut at the end of the sample
        try:
            text = head[:-3].decode("utf-8")
        except UnicodeDecodeError:
            return False
    return all(ch.isprintable() or ch in "\t\r\n\f" for ch in text)


def read_head(path: str, n: int = HEAD_BYTES) -> bytes:
    """First n bytes of a file (raises OSError)."""
    with open(path, "rb") as handle:
        return handle.read(n)


def describe_os_error(error: OSError) -> str:
    """A person-readable sentence for an error from opening or reading a file."""
    if isinstance(error, FileNotFoundError):
        return "the file no longer exists (deleted or moved after it was found)"
    if isinstance(error, PermissionError):
        return "cannot be read: permission denied"
    if isinstance(error, IsADirectoryError):
        return "is a folder, not a file"
    return f"cannot be read: {error.strerror or error}"


def check_candidate(path: str, st: os.stat_result | None = None) -> Skipped | FileIdentity:
    """Identity for a file that looks like an image, or the reason it does not."""
    name = os.path.basename(path)
    if name.startswith("._"):
        return Skipped(path, "macOS resource fork ('._' file): holds metadata, not an image")
    if name.startswith("."):
        return Skipped(path, "hidden file (name starts with a dot)")
    try:
        st = st or os.stat(path)
    except OSError as error:
        if os.path.islink(path):
            return Skipped(path, "broken or looping symbolic link")
        return Skipped(path, describe_os_error(error))
    if not stat.S_ISREG(st.st_mode):
        return Skipped(path, "not a regular file (device, pipe or socket)")
    if st.st_size == 0:
        return Skipped(path, "empty file (0 bytes)")
    try:
        head = read_head(path)
    except OSError as error:
        return Skipped(path, describe_os_error(error))
    image_format, other = sniff(head)
    has_image_ext = os.path.splitext(name)[1].lower() in IMAGE_EXTENSIONS
    if image_format is None:
        if other is not None:
            return Skipped(path, f"not an image: looks like {other}")
        if not has_image_ext:
            return Skipped(path, "not an image: unrecognised file type")
        # formats without magic bytes (TGA, some ICO variants): let the decoder decide
    return FileIdentity(path, st.st_size, st.st_mtime_ns)


def scan(
    inputs: Sequence[str | os.PathLike],
    *,
    include: Sequence[str] = (),
    exclude: Sequence[str] = (),
    on_progress: ProgressCallback = no_progress,
    cancelled: CancelFlag = never_cancelled,
) -> ScanResult:
    """Find image files in folders (recursively) and file lists; list what was left out and why.

    `include` / `exclude` are glob patterns matched against the file name and the path relative to its
    input folder (e.g. "*.png", "raw/*"); a file must match one include (when given) and no exclude.
    """
    meter = RateMeter("scan", 0, on_progress)
    found: dict[str, FileIdentity] = {}
    skipped: dict[str, Skipped] = {}

    def consider(path: str, relative: str, st: os.stat_result | None) -> None:
        if path in found or path in skipped or not _selected(relative, include, exclude):
            return
        result = check_candidate(path, st)
        if isinstance(result, Skipped):
            skipped[path] = result
        else:
            found[path] = result
        if (len(found) + len(skipped)) % 64 == 0:
            check_cancel(cancelled)
            meter.update(len(found) + len(skipped), message=f"{len(found)} images found")

    for raw in inputs:
        path = os.path.abspath(os.fspath(raw))
        try:
            st = os.stat(path)
        except OSError as error:
            reason = "input not found" if isinstance(error, FileNotFoundError) else describe_os_error(error)
            if os.path.islink(path):
                reason = "broken or looping symbolic link"
            skipped[path] = Skipped(path, reason)
            continue
        if stat.S_ISDIR(st.st_mode):
            _walk(path, consider, skipped, cancelled)
        else:
            consider(path, os.path.basename(path), st)

    files = sorted(found.values(), key=lambda f: f.path)
    meter.total = len(found) + len(skipped)
    meter.update(meter.total, message=f"{len(files)} images found", force=True)
    return ScanResult(files, sorted(skipped.values(), key=lambda s: s.path))


def _selected(relative: str, include: Sequence[str], exclude: Sequence[str]) -> bool:
    name = os.path.basename(relative)
    relative = relative.replace(os.sep, "/")

    def matches(pattern: str) -> bool:
        return fnmatch.fnmatch(name, pattern) or fnmatch.fnmatch(relative, pattern)

    if include and not any(matches(p) for p in include):
        return False
    return not any(matches(p) for p in exclude)


def _walk(root: str, consider, skipped: dict[str, Skipped], cancelled: CancelFlag) -> None:
    """Depth-first walk that follows folder symlinks but never enters the same folder twice."""
    st = os.stat(root)
    visited = {(st.st_dev, st.st_ino)}
    stack = [root]
    while stack:
        check_cancel(cancelled)
        folder = stack.pop()
        try:
            with os.scandir(folder) as entries:
                entries = sorted(entries, key=lambda e: e.name)
        except OSError as error:
            skipped[folder] = Skipped(folder, f"folder {describe_os_error(error)}")
            continue
        for entry in entries:
            relative = os.path.relpath(entry.path, root)
            try:
                is_dir = entry.is_dir(follow_symlinks=True)
            except OSError:
                is_dir = False
            if is_dir:
                if entry.name.startswith("."):
                    skipped[entry.path] = Skipped(
                        entry.path, "hidden folder (name starts with a dot): not searched"
                    )
                    continue
                try:
                    st = entry.stat(follow_symlinks=True)
                except OSError as error:
                    skipped[entry.path] = Skipped(entry.path, f"folder {describe_os_error(error)}")
                    continue
                if (st.st_dev, st.st_ino) in visited:
                    skipped[entry.path] = Skipped(
                        entry.path, "symbolic link loop: this folder was already searched"
                    )
                    continue
                visited.add((st.st_dev, st.st_ino))
                stack.append(entry.path)
                continue
            try:
                st = entry.stat(follow_symlinks=True)
            except OSError:
                st = None
            consider(entry.path, relative, st)
