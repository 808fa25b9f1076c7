"""Small shared test helpers (importable as `helpers`: pytest puts tests/ on sys.path)."""

from __future__ import annotations

import io
import socket


def lesion_image(size=(320, 240), skin=(224, 180, 150), lesion=(90, 50, 40)):
    from PIL import Image, ImageDraw

    img = Image.new("RGB", size, skin)
    w, h = size
    ImageDraw.Draw(img).ellipse((w * 0.35, h * 0.3, w * 0.65, h * 0.7), fill=lesion)
    return img



def jpeg_bytes(img) -> bytes:
    buf = io.BytesIO()
    img.save(buf, format="JPEG")
    return buf.getvalue()


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]
