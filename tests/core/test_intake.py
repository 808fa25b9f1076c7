"""Image intake: every kind of bad or odd file gets a clear error or a correct, metadata-free RGB image."""

from __future__ import annotations

import io
import struct
import zlib

import numpy as np
import pytest
from PIL import Image

from assistant.core.errors import IntakeError
from assistant.core.intake import MAX_DECODE_PIXELS, PixelBudget, load_image
from support.images import jpeg_bytes, lesion_image


def _png(img: Image.Image) -> bytes:
    buf = io.BytesIO()
    img.save(buf, format="PNG")
    return buf.getvalue()


def _png_bomb(width: int, height: int) -> bytes:
    """A valid PNG header claiming huge dimensions, with a tiny compressed body (a decompression bomb)."""
    def chunk(kind: bytes, data: bytes) -> bytes:
        return struct.pack(">I", len(data)) + kind + data + struct.pack(">I", zlib.crc32(kind + data) & 0xFFFFFFFF)

    ihdr = struct.pack(">IIBBBBB", width, height, 8, 0, 0, 0, 0)  # 8-bit greyscale
    row = b"\x00" + b"\x00" * width
    body = zlib.compress(row * 16, 9)  # far fewer rows than declared: decoding would try to expand it all
    return b"\x89PNG\r\n\x1a\n" + chunk(b"IHDR", ihdr) + chunk(b"IDAT", body) + chunk(b"IEND", b"")


@pytest.mark.parametrize("data, message", [
    (b"\x00\x01garbage bytes that are not an image", "not a recognised image"),
    (b"", "empty"),
])
def test_garbage_and_empty_bytes(data, message):
    with pytest.raises(IntakeError, match=message):
        load_image(data, label="image 1")


def test_empty_file(tmp_path):
    path = tmp_path / "empty.jpg"
    path.write_bytes(b"")
    with pytest.raises(IntakeError, match="image 1 is empty"):
        load_image(path, label="image 1")


def test_missing_file_names_the_file_not_the_folder(tmp_path):
    with pytest.raises(IntakeError, match="no such file: nope.jpg") as err:
        load_image(tmp_path / "nope.jpg", label="image 1")
    assert str(tmp_path) not in str(err.value)


def test_truncated_png():
    data = _png(lesion_image())
    with pytest.raises(IntakeError, match="truncated or corrupt"):
        load_image(data[: len(data) // 2], label="image 1")


def test_one_pixel_image_is_refused_with_its_size():
    with pytest.raises(IntakeError, match="only 1x1 pixels"):
        load_image(_png(Image.new("RGB", (1, 1))), label="image 1")


def test_png_bomb_is_refused_before_decoding():
    bomb = _png_bomb(100_000, 100_000)
    assert len(bomb) < 10_000  # tiny on disk, 10 gigapixels declared
    with pytest.raises(IntakeError, match="too many pixels|refused before decoding"):
        load_image(bomb, label="image 1")


def test_just_over_our_own_limit_gives_dimensions():
    side = int(MAX_DECODE_PIXELS ** 0.5) + 10
    with pytest.raises(IntakeError, match=rf"{side}x{side} pixels .* refused before decoding"):
        load_image(_png_bomb(side, side), label="image 1")


def test_cmyk_jpeg_becomes_rgb():
    img = lesion_image().convert("CMYK")
    buf = io.BytesIO()
    img.save(buf, format="JPEG")
    out = load_image(buf.getvalue(), label="image 1")
    assert out.image.mode == "RGB" and out.source_format == "JPEG"
    r, g, b = out.image.getpixel((5, 5))
    assert r > g > b  # skin tone survives the conversion


def test_16bit_png_is_scaled_to_8bit_rgb():
    arr = (np.linspace(0, 65535, 64 * 64).reshape(64, 64)).astype(np.uint16)
    img = Image.fromarray(arr)  # mode I;16
    assert img.mode.startswith("I;16")
    out = load_image(_png(img), label="image 1")
    pixels = np.asarray(out.image)
    assert out.image.mode == "RGB" and pixels.dtype == np.uint8
    assert pixels.min() <= 1 and pixels.max() >= 254  # full range kept, not clipped to black/white


def test_rgba_png_is_composited_on_white():
    img = Image.new("RGBA", (64, 64), (255, 0, 0, 0))  # fully transparent red
    out = load_image(_png(img), label="image 1")
    assert out.image.mode == "RGB" and out.image.getpixel((10, 10)) == (255, 255, 255)


def test_palette_png_becomes_rgb():
    out = load_image(_png(lesion_image().convert("P")), label="image 1")
    assert out.image.mode == "RGB"


def test_exif_rotated_jpeg_with_gps_is_rotated_and_stripped():
    img = Image.new("RGB", (200, 100), (200, 150, 120))
    img.paste((0, 0, 255), (0, 0, 20, 20))  # a blue marker in the stored top-left corner
    exif = Image.Exif()
    exif[0x0112] = 6  # orientation: rotate 90° clockwise to display
    exif[0x010F] = "PhoneMaker"
    gps = exif.get_ifd(0x8825)
    gps[1], gps[2] = "N", (51.0, 30.0, 0.0)
    buf = io.BytesIO()
    img.save(buf, format="JPEG", exif=exif.tobytes(), quality=95)
    assert Image.open(io.BytesIO(buf.getvalue())).getexif().get(0x0112) == 6

    out = load_image(buf.getvalue(), label="image 1")
    assert out.image.size == (100, 200)  # orientation applied
    r, _g, b = out.image.getpixel((95, 5))  # marker now in the displayed top-right corner
    assert b > 150 and r < 100
    assert not out.image.info and not out.image.getexif()  # nothing carried on the clean image
    reencoded = Image.open(io.BytesIO(out.png_bytes()))
    assert not reencoded.getexif() and "exif" not in reencoded.info and "icc_profile" not in reencoded.info
    assert b"PhoneMaker" not in out.png_bytes()


@pytest.mark.parametrize("fmt", ["GIF", "BMP", "TIFF"])
def test_unsupported_formats_are_named(fmt):
    buf = io.BytesIO()
    lesion_image().save(buf, format=fmt)
    with pytest.raises(IntakeError, match=f"is a {fmt} file; only JPEG, PNG and WebP"):
        load_image(buf.getvalue(), label="image 1")


def test_webp_and_pil_inputs_are_accepted():
    buf = io.BytesIO()
    lesion_image().save(buf, format="WEBP")
    assert load_image(buf.getvalue(), label="image 1").source_format == "WEBP"
    assert load_image(lesion_image(), label="image 1").image.mode == "RGB"


def test_resized_to_pixel_budget_keeping_aspect():
    out = load_image(jpeg_bytes(lesion_image((2000, 1000))), label="image 1", budget=PixelBudget(max_pixels=200_000))
    w, h = out.image.size
    assert w * h <= 200_000 and abs(w / h - 2.0) < 0.02
    assert out.original_size == (2000, 1000)


def test_hash_is_of_clean_pixels_and_stable():
    a = load_image(jpeg_bytes(lesion_image()), label="image 1")
    b = load_image(jpeg_bytes(lesion_image()), label="image 1")
    assert a.sha256 == b.sha256 and len(a.sha256) == 64


def test_oversized_file_is_refused_before_reading_pixels(tmp_path):
    from assistant.core.intake import MAX_FILE_BYTES

    big = tmp_path / "huge.jpg"
    big.write_bytes(b"\xff\xd8" + b"\0" * MAX_FILE_BYTES)
    with pytest.raises(IntakeError, match="image 1 is larger than 25 MiB"):
        load_image(big, label="image 1")
    with pytest.raises(IntakeError, match="larger than 25 MiB"):
        load_image(big.read_bytes(), label="image 1")


def test_an_already_clean_image_is_taken_as_it_is():
    clean = load_image(jpeg_bytes(lesion_image()), label="image 1")
    assert load_image(clean, label="image 2") is clean
