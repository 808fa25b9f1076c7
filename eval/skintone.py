"""Skin-tone groups and the image-based estimate (Individual Typology Angle) used where no label exists.

ITA = arctan((L* - 50) / b*) * 180 / pi on CIELAB (D65) of *non-lesion* skin: the outer ring of the image (15%
of each side), keeping pixels whose L* lies in the ring's interquartile range (drops hair, shadows and any
lesion reaching the border). ITA -> Fitzpatrick-like category after Del Bino & Bernerd (2013), as used by
Groh et al. (2021): > 55 I, 41-55 II, 28-41 III, 10-28 IV, -30-10 V, < -30 VI.

The estimate is crude (lighting, white balance and erythema move it) and is always reported as its own scale,
``fitzpatrick_estimated``, never mixed with labelled groups. When a task asks for it, every image gets an
estimate (also those with labels, so the estimate can be checked against them).
"""

from __future__ import annotations

import math
from pathlib import Path

import numpy as np
from PIL import Image

ITA_BOUNDS = [(55.0, "I"), (41.0, "II"), (28.0, "III"), (10.0, "IV"), (-30.0, "V")]


def srgb_to_lab(rgb: np.ndarray) -> np.ndarray:
    """(..., 3) uint8 or [0, 1] floats -> CIELAB (D65)."""
    c = np.asarray(rgb, dtype=np.float64)
    if c.max() > 1.0:
        c = c / 255.0
    lin = np.where(c <= 0.04045, c / 12.92, ((c + 0.055) / 1.055) ** 2.4)
    m = np.array([[0.4124564, 0.3575761, 0.1804375], [0.2126729, 0.7151522, 0.0721750],
                  [0.0193339, 0.1191920, 0.9503041]])
    xyz = lin @ m.T / np.array([0.95047, 1.0, 1.08883])
    f = np.where(xyz > (6 / 29) ** 3, np.cbrt(xyz), xyz / (3 * (6 / 29) ** 2) + 4 / 29)
    return np.stack([116 * f[..., 1] - 16, 500 * (f[..., 0] - f[..., 1]), 200 * (f[..., 1] - f[..., 2])], axis=-1)


def lab_to_srgb(lab: np.ndarray) -> np.ndarray:
    """CIELAB (D65) -> sRGB uint8 (clipped)."""
    lab = np.asarray(lab, dtype=np.float64)
    fy = (lab[..., 0] + 16) / 116
    fx, fz = fy + lab[..., 1] / 500, fy - lab[..., 2] / 200
    f = np.stack([fx, fy, fz], axis=-1)
    xyz = np.where(f > 6 / 29, f ** 3, 3 * (6 / 29) ** 2 * (f - 4 / 29)) * np.array([0.95047, 1.0, 1.08883])
    m_inv = np.array([[3.2404542, -1.5371385, -0.4985314], [-0.9692660, 1.8760108, 0.0415560],
                      [0.0556434, -0.2040259, 1.0572252]])
    lin = np.clip(xyz @ m_inv.T, 0, 1)
    c = np.where(lin <= 0.0031308, 12.92 * lin, 1.055 * lin ** (1 / 2.4) - 0.055)
    return np.clip(np.round(c * 255), 0, 255).astype(np.uint8)


def ita_from_lab(L: float, b: float) -> float:
    return math.degrees(math.atan2(L - 50.0, b)) if b != 0 else (90.0 if L >= 50 else -90.0)


def ita_to_fitzpatrick(ita: float) -> str:
    for bound, fst in ITA_BOUNDS:
        if ita > bound:
            return fst
    return "VI"


def estimate_ita(image: Image.Image | str | Path, ring: float = 0.15) -> float:
    img = image if isinstance(image, Image.Image) else Image.open(image)
    arr = np.asarray(img.convert("RGB"))
    h, w = arr.shape[:2]
    dh, dw = max(1, int(h * ring)), max(1, int(w * ring))
    mask = np.ones((h, w), dtype=bool)
    mask[dh:h - dh, dw:w - dw] = False
    lab = srgb_to_lab(arr[mask])
    lo, hi = np.percentile(lab[:, 0], [25, 75])
    keep = lab[(lab[:, 0] >= lo) & (lab[:, 0] <= hi)]
    keep = keep if len(keep) else lab
    return ita_from_lab(float(keep[:, 0].mean()), float(keep[:, 2].mean()))


def estimate_fitzpatrick(image) -> tuple[str, float]:
    ita = estimate_ita(image)
    return ita_to_fitzpatrick(ita), ita
