"""Test images: a synthetic lesion photo, PNG/JPEG bytes, data URLs, a pixel-bomb header, chat messages with images."""

from __future__ import annotations

import base64
import functools
import io
import struct
import zlib

from PIL import Image


def lesion_image(size=(320, 240), skin=(224, 180, 150), lesion=(90, 50, 40)):
    from PIL import ImageDraw

    img = Image.new("RGB", size, skin)
    w, h = size
    ImageDraw.Draw(img).ellipse((w * 0.35, h * 0.3, w * 0.65, h * 0.7), fill=lesion)
    return img



def jpeg_bytes(img) -> bytes:
    buf = io.BytesIO()
    img.save(buf, format="JPEG")
    return buf.getvalue()


def png_bytes(size=(96, 80), colour=(190, 120, 110)) -> bytes:
    img = Image.new("RGB", size, colour)
    img.paste((90, 50, 40), (size[0] // 4, size[1] // 4, size[0] // 2, size[1] // 2))
    buf = io.BytesIO()
    img.save(buf, format="PNG")
    return buf.getvalue()


def data_url(data: bytes, mime: str = "image/png") -> str:
    return f"data:{mime};base64," + base64.b64encode(data).decode("ascii")


def _png_chunk(kind: bytes, payload: bytes) -> bytes:
    return struct.pack(">I", len(payload)) + kind + payload + struct.pack(">I", zlib.crc32(kind + payload))


def pixel_bomb_png(width: int = 60000, height: int = 60000) -> bytes:
    """A valid PNG header claiming 3.6 gigapixels, with a tiny body: refused before decoding."""
    ihdr = struct.pack(">IIBBBBB", width, height, 1, 0, 0, 0, 0)
    return (b"\x89PNG\r\n\x1a\n" + _png_chunk(b"IHDR", ihdr) + _png_chunk(b"IDAT", zlib.compress(b"\x00" * 64))
            + _png_chunk(b"IEND", b""))


@functools.cache
def strip_png(width: int = 100_000, height: int = 399) -> bytes:
    """A complete, decodable grey PNG of an extreme aspect ratio (by default just under the 40 MP cap), built row by
    row with zlib so that it costs milliseconds and a few dozen KiB."""
    ihdr = struct.pack(">IIBBBBB", width, height, 8, 0, 0, 0, 0)  # 8-bit greyscale
    raw = (b"\x00" + b"\x80" * width) * height  # filter byte "none" + one grey row
    return (b"\x89PNG\r\n\x1a\n" + _png_chunk(b"IHDR", ihdr) + _png_chunk(b"IDAT", zlib.compress(raw, 6))
            + _png_chunk(b"IEND", b""))


def image_message(*urls: str, text: str = "Itchy scaly plaque on the elbow for 3 months.") -> list[dict]:
    content = [{"type": "image_url", "image_url": {"url": u}} for u in urls]
    return [{"role": "user", "content": [*content, {"type": "text", "text": text}]}]


def varied_lesion(i: int):
    """The i-th of a family of distinct synthetic lesion photos (size, skin tone and lesion shift with i)."""
    return lesion_image(size=(160 + 8 * (i % 7), 120 + 4 * (i % 5)), skin=(200 + 3 * (i % 9), 160 + i % 30, 130),
                        lesion=(80 + 5 * (i % 11), 50, 40 + 3 * (i % 7)))


def exif_gps_jpeg(img=None) -> bytes:
    """A JPEG carrying EXIF with a camera maker and GPS coordinates (PHI that must never come back out)."""
    img = img or lesion_image()
    exif = Image.Exif()
    exif[0x010F] = "PhoneMaker"
    gps = exif.get_ifd(0x8825)
    gps[1], gps[2] = "N", (51.0, 30.0, 0.0)
    buf = io.BytesIO()
    img.save(buf, format="JPEG", exif=exif.tobytes(), quality=90)
    return buf.getvalue()


def hostile_image_files(folder) -> dict[str, str]:
    """Files that look like images and are not acceptable, written into ``folder``: name -> what is wrong."""
    from pathlib import Path

    folder = Path(folder)
    folder.mkdir(parents=True, exist_ok=True)
    whole = jpeg_bytes(lesion_image())
    files = {
        "garbage.jpg": (b"\x00\x01 definitely not an image " * 20, "not a recognised image file"),
        "text.png": (b"patient name: J. Doe, DOB 1970-01-01\n", "not a recognised image file"),
        "bomb.png": (pixel_bomb_png(), "too many pixels"),
        "truncated.jpg": (whole[: len(whole) // 3], "truncated or corrupt"),
        "empty.jpg": (b"", "is empty"),
        "dot.png": (png_bytes(size=(1, 1)), "only 1x1 pixels"),
    }
    for name, (data, _) in files.items():
        (folder / name).write_bytes(data)
    return {name: why for name, (_, why) in files.items()}
