"""Decoding real files in every format and mode: upright, white behind transparency, sRGB, or a reason."""

from __future__ import annotations

import io
import struct
import zlib

import numpy as np
import pytest
from PIL import Image, ImageCms, ImageOps

from imgclust_desktop.core.decode import DecodeError, decode, load_array_images

RED, BLUE, GREEN, WHITE = (255, 0, 0), (0, 0, 255), (0, 160, 0), (255, 255, 255)


def halves(size=(64, 48), left=RED, right=BLUE) -> np.ndarray:
    """An RGB picture whose left half is one colour and right half another."""
    width, height = size
    pixels = np.empty((height, width, 3), np.uint8)
    pixels[:, : width // 2] = left
    pixels[:, width // 2 :] = right
    return pixels


def near(pixel, colour, tolerance=40) -> bool:
    return bool(np.all(np.abs(np.asarray(pixel, int) - np.asarray(colour, int)) <= tolerance))


def left_right(image: np.ndarray):
    h, w = image.shape[:2]
    return image[h // 2, w // 4], image[h // 2, 3 * w // 4]


@pytest.mark.parametrize(
    "name, save_kwargs",
    [
        ("pic.jpg", {"quality": 95}),
        ("pic.png", {}),
        ("pic.webp", {"lossless": True}),
        ("pic.tif", {}),
        ("pic.bmp", {}),
        ("pic.gif", {}),
        ("pic.heic", {"quality": 95}),
        ("pic.tga", {}),
        ("pic.ppm", {}),
        ("pic.qoi", {}),
    ],
)
def test_every_format_decodes_to_the_same_picture(tmp_path, name, save_kwargs):
    if name.endswith(".heic"):
        from pillow_heif import register_heif_opener

        register_heif_opener()  # only for writing the sample; decode registers its own opener
    path = tmp_path / name
    Image.fromarray(halves()).save(path, **save_kwargs)
    decoded = decode(str(path), max_side=32)
    assert decoded.image.dtype == np.uint8 and decoded.image.shape == (24, 32, 3)
    assert decoded.original_size == (64, 48)
    left, right = left_right(decoded.image)
    assert near(left, RED) and near(right, BLUE)
    assert set(decoded.thumbnails) == {128, 256}
    for size, jpeg in decoded.thumbnails.items():
        thumb = Image.open(io.BytesIO(jpeg))
        assert thumb.format == "JPEG" and max(thumb.size) == min(size, 64)  # the source is 64 px: kept


def test_format_is_detected_by_content_not_extension(tmp_path):
    path = tmp_path / "actually_a_png.jpg"
    Image.fromarray(halves()).save(path, format="PNG")
    left, right = left_right(decode(str(path)).image)
    assert near(left, RED, 0) and near(right, BLUE, 0)


def test_exif_rotated_photo_has_its_red_half_on_top(tmp_path):
    # stored landscape, red left; orientation 6 = "rotate 90 degrees clockwise to view": red ends on top
    path = tmp_path / "rotated.jpg"
    exif = Image.Exif()
    exif[0x0112] = 6
    Image.fromarray(halves((80, 40))).save(path, exif=exif, quality=95)
    decoded = decode(str(path), max_side=80)
    assert decoded.original_size == (40, 80)
    assert decoded.image.shape == (80, 40, 3)
    assert near(decoded.image[10, 20], RED) and near(decoded.image[70, 20], BLUE)


@pytest.mark.parametrize("orientation", range(1, 9))
def test_every_exif_orientation_matches_pillows_reference(tmp_path, orientation):
    pixels = np.zeros((30, 50, 3), np.uint8)
    pixels[:15, :25] = RED  # one marked corner makes every flip and turn distinguishable
    pixels[15:, 25:] = BLUE
    exif = Image.Exif()
    exif[0x0112] = orientation
    path = tmp_path / f"o{orientation}.png"
    Image.fromarray(pixels).save(path, exif=exif)
    expected = np.asarray(ImageOps.exif_transpose(Image.open(path)).convert("RGB"))
    decoded = decode(str(path), max_side=64)
    assert decoded.image.shape == expected.shape
    assert decoded.original_size == (expected.shape[1], expected.shape[0])
    assert np.array_equal(decoded.image, expected)


def test_transparency_is_composited_on_white(tmp_path):
    rgba = np.zeros((40, 40, 4), np.uint8)
    rgba[:, 20:] = (*GREEN, 255)  # opaque green right, fully transparent black left
    rgba[:10, :20] = (255, 0, 0, 128)  # half-transparent red corner
    path = tmp_path / "alpha.png"
    Image.fromarray(rgba, "RGBA").save(path)
    image = decode(str(path), max_side=40).image
    assert near(image[30, 5], WHITE, 2)  # transparent black shows white, not black
    assert near(image[20, 30], GREEN, 2)
    assert near(image[3, 5], (255, 127, 127), 3)


@pytest.mark.parametrize(
    "mode, build",
    [
        ("LA", lambda: Image.merge("LA", [Image.new("L", (32, 32), 0), Image.new("L", (32, 32), 0)])),
        ("P+transparency", lambda: _palette_with_transparent_index()),
    ],
)
def test_other_transparent_modes_become_white(tmp_path, mode, build):
    path = tmp_path / "transparent.png"
    build().save(path)
    image = decode(str(path), max_side=32).image
    assert near(image[16, 16], WHITE, 2)


def _palette_with_transparent_index() -> Image.Image:
    im = Image.new("P", (32, 32), 0)
    im.putpalette([0, 0, 0, 255, 0, 0] + [0] * 762)
    im.info["transparency"] = 0
    return im


def test_cmyk_jpeg_comes_out_rgb(tmp_path):
    path = tmp_path / "cmyk.jpg"
    Image.new("CMYK", (40, 30), (0, 255, 255, 0)).save(path, quality=95)  # no cyan, full magenta+yellow
    image = decode(str(path)).image
    assert near(image[15, 20], RED, 30)


def test_16_bit_grayscale_png_and_tiff_keep_their_tones_in_three_channels(tmp_path):
    ramp = np.tile(np.linspace(0, 65535, 64).astype(np.uint16), (16, 1))
    for name in ("ramp16.png", "ramp16.tif"):
        path = tmp_path / name
        Image.fromarray(ramp).save(path)
        image = decode(str(path), max_side=64).image
        assert image.shape == (16, 64, 3)
        assert np.array_equal(image[..., 0], image[..., 2])  # gray stays gray, in 3 channels
        assert image[8, 0, 0] <= 3 and image[8, -1, 0] >= 252  # full range, not clipped to white
        assert np.all(np.diff(image[8, :, 0].astype(int)) >= 0)


def test_float_tiff_and_one_bit_bmp(tmp_path):
    ramp = np.tile(np.linspace(0.0, 1.0, 32, dtype=np.float32), (8, 1))
    Image.fromarray(ramp, "F").save(tmp_path / "float.tif")
    image = decode(str(tmp_path / "float.tif"), max_side=32).image
    assert image[4, 0, 0] <= 2 and image[4, -1, 0] >= 253
    bits = Image.new("1", (16, 16), 0)
    bits.paste(1, (8, 0, 16, 16))
    bits.save(tmp_path / "bits.bmp")
    left, right = left_right(decode(str(tmp_path / "bits.bmp"), max_side=16).image)
    assert near(left, (0, 0, 0), 0) and near(right, WHITE, 0)


def test_multipage_tiff_and_animated_gif_give_their_first_page(tmp_path):
    pages = [Image.new("RGB", (20, 20), RED), Image.new("RGB", (20, 20), BLUE)]
    for name in ("pages.tif", "anim.gif"):
        pages[0].save(tmp_path / name, save_all=True, append_images=pages[1:])
        assert near(decode(str(tmp_path / name)).image[10, 10], RED, 10)


def _channel_swapping_profile() -> bytes:
    """The built-in sRGB profile with its red and green primaries swapped (a non-sRGB RGB space)."""
    icc = bytearray(ImageCms.ImageCmsProfile(ImageCms.createProfile("sRGB")).tobytes())
    tags = {}
    for i in range(struct.unpack(">I", icc[128:132])[0]):
        entry = 132 + 12 * i
        signature, offset, _ = struct.unpack(">4sII", icc[entry : entry + 12])
        tags[signature] = (entry, offset)
    (red_entry, red_offset), (green_entry, green_offset) = tags[b"rXYZ"], tags[b"gXYZ"]
    struct.pack_into(">I", icc, red_entry + 4, green_offset)
    struct.pack_into(">I", icc, green_entry + 4, red_offset)
    return (
        bytes(icc).replace(b"sRGB", b"swap").replace("sRGB".encode("utf-16-be"), "swap".encode("utf-16-be"))
    )


def test_icc_profile_is_converted_to_srgb(tmp_path):
    # a pixel stored as (255, 0, 0) in a space whose first primary is sRGB's green is green on screen
    Image.new("RGB", (24, 24), RED).save(tmp_path / "tagged.png", icc_profile=_channel_swapping_profile())
    assert near(decode(str(tmp_path / "tagged.png")).image[12, 12], (0, 255, 0), 5)
    srgb = ImageCms.ImageCmsProfile(ImageCms.createProfile("sRGB")).tobytes()
    Image.new("RGB", (24, 24), RED).save(tmp_path / "srgb.png", icc_profile=srgb)
    assert near(decode(str(tmp_path / "srgb.png")).image[12, 12], RED, 0)


def test_large_jpeg_is_drafted_and_long_edge_respects_max_side(tmp_path):
    rng = np.random.default_rng(0)
    pixels = (rng.random((1500, 2000, 3)) * 255).astype(np.uint8)
    pixels[:, :1000] = RED
    Image.fromarray(pixels).save(tmp_path / "big.jpg", quality=90)
    decoded = decode(str(tmp_path / "big.jpg"), max_side=200)
    assert decoded.image.shape == (150, 200, 3) and decoded.original_size == (2000, 1500)
    assert near(decoded.image[75, 40], RED)
    small = Image.new("RGB", (40, 20), BLUE)
    small.save(tmp_path / "small.png")
    tiny = decode(str(tmp_path / "small.png"), max_side=200)
    assert tiny.image.shape == (20, 40, 3)  # never upscaled
    # thumbnails are never enlarged either (widgets scale them when they paint), and one encode serves both
    assert Image.open(io.BytesIO(tiny.thumbnails[256])).size == (40, 20)
    assert tiny.thumbnails[128] == tiny.thumbnails[256]
    assert Image.open(io.BytesIO(decoded.thumbnails[128])).size == (128, 96)


def _png_claiming(width: int, height: int) -> bytes:
    """A tiny PNG whose header declares a huge canvas: the classic decompression bomb."""

    def chunk(kind: bytes, data: bytes) -> bytes:
        return struct.pack(">I", len(data)) + kind + data + struct.pack(">I", zlib.crc32(kind + data))

    header = struct.pack(">IIBBBBB", width, height, 8, 0, 0, 0, 0)
    return (
        b"\x89PNG\r\n\x1a\n"
        + chunk(b"IHDR", header)
        + chunk(b"IDAT", zlib.compress(b"\0" * 64))
        + chunk(b"IEND", b"")
    )


@pytest.mark.parametrize(
    "name, content, reason",
    [
        ("bomb.png", _png_claiming(30000, 30000), "too large to decode safely"),
        ("pdf.jpg", b"%PDF-1.7\n%\xe2\xe3\xcf\xd3\n1 0 obj\n", "not an image: looks like a PDF document"),
        ("notes.png", b"these are my holiday notes\n", "not an image: looks like a text file"),
        ("noise.jpg", bytes(np.random.default_rng(1).integers(0, 256, 500, dtype=np.uint8)), "not an image"),
        ("empty.jpg", b"", "empty file (0 bytes)"),
    ],
)
def test_bad_content_gives_a_reason(tmp_path, name, content, reason):
    path = tmp_path / name
    path.write_bytes(content)
    with pytest.raises(DecodeError) as error:
        decode(str(path))
    assert reason in str(error.value)


def test_truncated_and_corrupt_files_give_format_specific_reasons(tmp_path):
    rng = np.random.default_rng(2)
    pixels = (rng.random((200, 200, 3)) * 255).astype(np.uint8)
    for fmt, ext in (("JPEG", "jpg"), ("PNG", "png")):
        buffer = io.BytesIO()
        Image.fromarray(pixels).save(buffer, fmt)
        data = buffer.getvalue()
        (tmp_path / f"cut.{ext}").write_bytes(data[: len(data) // 2])
        with pytest.raises(DecodeError, match=f"truncated {fmt}: the file ends early"):
            decode(str(tmp_path / f"cut.{ext}"))
        damaged = bytearray(data)
        damaged[len(data) // 3 : len(data) // 3 + 3000] = rng.integers(0, 256, 3000, dtype=np.uint8).tobytes()
        (tmp_path / f"damaged.{ext}").write_bytes(bytes(damaged))
        with pytest.raises(DecodeError, match=f"(corrupt|truncated) {fmt}"):
            decode(str(tmp_path / f"damaged.{ext}"))


@pytest.mark.parametrize(
    "size, fmt",
    [
        ((20, 4000), "PNG"),
        ((4000, 20), "JPEG"),
        ((1, 100_000), "PNG"),
        ((30_000, 7), "TIFF"),
        ((3, 10_000), "GIF"),
    ],
)
def test_strips_banners_and_panoramas_decode_with_their_aspect_kept(tmp_path, size, fmt):
    width, height = size
    long_axis = 0 if height > width else 1
    pixels = np.zeros((height, width, 3), np.uint8)
    first_half = [slice(None), slice(None)]
    first_half[long_axis] = slice(0, max(width, height) // 2)
    pixels[...] = BLUE
    pixels[tuple(first_half)] = RED  # red along the first half of the long edge, blue along the rest
    path = tmp_path / f"strip.{fmt.lower()}"
    Image.fromarray(pixels).save(path, fmt)

    decoded = decode(str(path), max_side=224)

    assert decoded.original_size == (width, height)
    h, w, _ = decoded.image.shape
    assert max(h, w) == 224 and min(h, w) >= 1
    assert (w > h) == (width > height)  # not turned, not squashed square
    first, last = decoded.image.reshape(-1, 3)[0], decoded.image.reshape(-1, 3)[-1]
    assert first[0] > 150 > first[2] and last[2] > 150 > last[0], (first, last)
    for side, jpeg in decoded.thumbnails.items():
        thumb = Image.open(io.BytesIO(jpeg))
        assert max(thumb.size) == side and min(thumb.size) >= 1


def test_a_decompression_bomb_is_still_refused_whatever_its_shape(tmp_path):
    def chunk(kind: bytes, data: bytes) -> bytes:
        return struct.pack(">I", len(data)) + kind + data + struct.pack(">I", zlib.crc32(kind + data))

    # 200,000 x 1,000 = 200 MP declared: over the limit although each row is short enough
    ihdr = struct.pack(">IIBBBBB", 200_000, 1_000, 8, 2, 0, 0, 0)
    png = (
        b"\x89PNG\r\n\x1a\n"
        + chunk(b"IHDR", ihdr)
        + chunk(b"IDAT", zlib.compress(b"\0" * 99))
        + chunk(b"IEND", b"")
    )
    (tmp_path / "bomb.png").write_bytes(png)
    with pytest.raises(DecodeError, match="too large to decode safely"):
        decode(str(tmp_path / "bomb.png"))


def test_vanished_file(tmp_path):
    with pytest.raises(DecodeError, match="no longer exists"):
        decode(str(tmp_path / "gone.jpg"))


def test_array_input_any_dtype_and_channels():
    gray16 = np.full((2, 8, 8), 65535, np.uint16)
    assert all(np.array_equal(im, np.full((8, 8, 3), 255, np.uint8)) for im in load_array_images(gray16))
    floats = np.zeros((3, 4, 5, 3), np.float32)
    floats[..., 0] = 1.0
    images = load_array_images(floats)
    assert len(images) == 3 and images[0].shape == (4, 5, 3) and tuple(images[0][0, 0]) == RED
    rgba = np.zeros((1, 4, 4, 4), np.uint8)  # transparent black
    assert tuple(load_array_images(rgba)[0][0, 0]) == WHITE
    with pytest.raises(ValueError, match="expected images"):
        load_array_images(np.zeros((10, 784)))
