"""Generated skin photos for the image-quality gate: the same scene at every skin tone, sharp or out of focus.

A scene is rendered in linear light (so texture and lesion contrast are *multiplicative*, as reflectance is):
a skin tone, fine band-limited texture (pores, micro-relief) and a few creases, a pigmented lesion with an irregular
border. Then the camera: optional defocus (Gaussian blur of the optical image), sensor noise, 8-bit sRGB, and
optionally JPEG. Tones: Fitzpatrick I-VI from ``eval.synthetic.SKIN_LAB`` and the ten Monk Skin Tone swatches.
"""

from __future__ import annotations

import functools
import io

import numpy as np
from PIL import Image

from eval.skintone import lab_to_srgb
from eval.synthetic import SKIN_LAB

# The Monk Skin Tone scale's published swatches (skintone.google), 1 = lightest, 10 = darkest.
MONK_HEX = ("f6ede4", "f3e7db", "f7ead0", "eadaba", "d7bd96", "a07e56", "825c43", "604134", "3a312a", "292420")


def fitzpatrick_rgb(fitzpatrick: str) -> tuple[int, int, int]:
    r, g, b = lab_to_srgb(np.array(SKIN_LAB[fitzpatrick], dtype=float)).astype(int).tolist()
    return r, g, b


def monk_rgb(monk: int) -> tuple[int, int, int]:
    h = MONK_HEX[monk - 1]
    return int(h[0:2], 16), int(h[2:4], 16), int(h[4:6], 16)


def all_tones() -> list[tuple[str, tuple[int, int, int]]]:
    """``("Fitzpatrick I", rgb) … ("Monk 10", rgb)``: every tone the fairness tests cover."""
    return ([(f"Fitzpatrick {f}", fitzpatrick_rgb(f)) for f in SKIN_LAB]
            + [(f"Monk {m}", monk_rgb(m)) for m in range(1, 11)])


def _linear(rgb: np.ndarray) -> np.ndarray:
    c = rgb / 255.0
    return np.where(c <= 0.04045, c / 12.92, ((c + 0.055) / 1.055) ** 2.4)


def _srgb(lin: np.ndarray) -> np.ndarray:
    lin = np.clip(lin, 0.0, 1.0)
    return np.where(lin <= 0.0031308, lin * 12.92, 1.055 * lin ** (1 / 2.4) - 0.055) * 255.0


def _gauss(a: np.ndarray, sigma: float) -> np.ndarray:
    """Separable Gaussian blur of a float image (2-D, or 3-D channel by channel), edges reflected."""
    if sigma <= 0:
        return a
    radius = int(np.ceil(3 * sigma))
    x = np.arange(-radius, radius + 1, dtype=np.float64)
    kernel = np.exp(-(x ** 2) / (2 * sigma ** 2))
    kernel /= kernel.sum()
    for axis in (0, 1):
        pad = [(radius, radius) if i == axis else (0, 0) for i in range(a.ndim)]
        padded = np.pad(a, pad, mode="reflect")
        n = a.shape[axis]
        a = sum(k * np.take(padded, range(i, i + n), axis=axis) for i, k in enumerate(kernel))
    return a


@functools.lru_cache(maxsize=256)  # the same photo serves several tests; callers never modify it
def skin_photo(tone: tuple[int, int, int], *, blur: float = 0.0, exposure: float = 1.0, size=(320, 240),
               lesion: bool = True, noise: float = 1.5, seed: int = 0) -> Image.Image:
    """One photo of ``tone`` skin: ``blur`` is the defocus (Gaussian sigma, pixels), ``exposure`` scales light."""
    rng = np.random.default_rng(seed)
    w, h = size
    base = _linear(np.asarray(tone, dtype=np.float64))
    texture = 1.0 + 0.12 * _gauss(rng.normal(0, 1, (h, w)), 1.0) / 0.28  # ~±12 % micro-relief
    yy, xx = np.mgrid[0:h, 0:w].astype(np.float64)
    for _ in range(4):  # creases: thin darker lines
        angle, offset = rng.uniform(0, np.pi), rng.uniform(-0.5, 0.5) * min(w, h)
        dist = np.abs((xx - w / 2) * np.sin(angle) - (yy - h / 2) * np.cos(angle) - offset)
        texture *= 1.0 - 0.10 * np.exp(-(dist ** 2) / 1.5)
    scene = base[None, None, :] * texture[..., None]
    if lesion:
        theta = np.arctan2(yy - h / 2, xx - w / 2)
        radius = 0.22 * min(w, h) * (1 + 0.12 * np.cos(3 * theta + 1.0) + 0.06 * np.cos(5 * theta))
        inside = np.clip(radius - np.hypot(xx - w / 2, yy - h / 2) + 0.5, 0.0, 1.0)  # a crisp border
        pigment = np.array([0.35, 0.28, 0.25])  # melanin absorbs more blue: a brown lesion on any tone
        scene = scene * (1 - inside[..., None] * (1 - pigment[None, None, :]))
    scene = _gauss(scene, blur) * exposure
    pixels = _srgb(scene) + rng.normal(0, noise, (h, w, 3))
    return Image.fromarray(np.clip(np.round(pixels), 0, 255).astype(np.uint8), "RGB")


def jpeg(img: Image.Image, quality: int = 90) -> bytes:
    buf = io.BytesIO()
    img.save(buf, format="JPEG", quality=quality)
    return buf.getvalue()


def png(img: Image.Image) -> bytes:
    buf = io.BytesIO()
    img.save(buf, format="PNG")
    return buf.getvalue()
