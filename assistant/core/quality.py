"""The image-quality gate: is each photo good enough to read? Advice, never a refusal.

Every surface runs it on the clean images intake produced: the UI shows the advice *before* a report is generated
(the clinician can retake or continue), the CLI prints it on stderr, the endpoint returns it as warnings, and the
pipeline records it in ``report.limitations``. Dermatologists' confidence tracks photo sharpness (SCIN), so a
report on a blurred or dark photo must say so.

The checks are deliberately cautious: a finding is only raised when the problem is clear, because a false
"retake" costs the clinician time and, worse, could teach users to ignore the advice. Two design choices keep them
fair across skin tones (validated on generated images of Fitzpatrick I-VI and Monk 1-10 in tests/core):

* **Blur** is the variance of the Laplacian of lightly smoothed *log* luminance, taken over the sharpest tile of
  the image. In log space an edge or skin texture of the same reflectance ratio scores the same on light and dark
  skin (a plain Laplacian scores the same border up to 20x lower on Monk 10 skin than on Monk 1); the smoothing
  (sigma 1 px) keeps sensor noise, which survives defocus, from passing for detail; the sharpest tile means one
  crisp border, hair or skin line is enough, so smooth skin is not "blurred".
* **Skin** is recognised by hue and chroma in CIELAB, with bounds wide enough for the palest and the darkest Monk
  swatches (Monk 10 has chroma ~4). It never looks at lightness except to skip black or blown-out pixels, so
  darker skin is never "no skin". Histopathology slides skip the skin checks; dermoscopy skips "too far".

Exposure counts clipped pixels only (near-black or blown-out white), never mean brightness, for the same reason:
a well-exposed photo of Monk 10 skin is dark on average, and a dim photo of light skin looks like a well-lit one
of dark skin. A photo with no visible structure at all (a texture-free drawing, a lesion the colour of the skin
around it) reads as blurred: nothing in it is sharp.
"""

from __future__ import annotations

from collections.abc import Sequence
from functools import lru_cache
from typing import Literal

import numpy as np
from PIL import Image, ImageCms
from pydantic import BaseModel, ConfigDict, Field

from assistant.core.case import Modality
from assistant.core.intake import IntakeImage

QualityCheck = Literal["low_resolution", "blur", "underexposed", "overexposed", "no_skin", "too_far"]

_TILE = 32  # pixels: a lesion border or skin line fits in one tile at the model's resolution
_LOG_SCALE = 255.0 / np.log(256.0)  # log luminance rescaled to about 0-255, so thresholds read like 8-bit ones
_LOG_OFFSET = 11.0  # code values added before the log: near-black quantisation steps are not "detail"
_SMOOTH_SIGMA = 1.0  # pixels of Gaussian smoothing before the Laplacian (a Laplacian of Gaussian)
_SKIN_THUMB = 160  # the skin check looks at a small thumbnail: colour statistics need no detail


class QualityThresholds(BaseModel):
    """Where each check fires. Calibrated on generated images (tests/core/test_quality.py); see the module doc."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    min_side: int = Field(200, ge=1, description="short side (pixels, as uploaded) below which detail is lost")
    sharpness: float = Field(
        1.2, ge=0, description="variance of the Laplacian of Gaussian of log luminance in the sharpest tile; below "
                               "it: blurred (generated sharp skin photos score 3.5-4.5 at every tone, 2 px of "
                               "defocus <= 0.7)")
    dark_fraction: float = Field(0.35, gt=0, le=1, description="share of near-black pixels above which: too dark "
                                                               "(a dermoscopy vignette is ~21 %)")
    dark_ceiling: float = Field(30.0, ge=0, le=255, description="if even the brightest 1 % of pixels stay below "
                                                                "this code value (0-255), the photo is too dark "
                                                                "(the Monk 10 swatch itself reaches 41)")
    bright_fraction: float = Field(0.30, gt=0, le=1, description="share of blown-out white pixels: washed out")
    no_skin_fraction: float = Field(0.03, ge=0, le=1, description="skin-coloured share below which: no skin")
    far_skin_fraction: float = Field(0.25, ge=0, le=1, description="skin-coloured share below which: too far")


class QualityFinding(BaseModel):
    """One problem with one image, as a sentence a clinician can act on (it names "image N", never a file)."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    image: str = Field(description='"image 1", "image 2", ...')
    check: QualityCheck
    message: str = Field(description="what is wrong and how to retake the photo, one sentence")
    measure: float = Field(description="the measured value the check compared")
    threshold: float


class QualityMeasures(BaseModel):
    """The raw measurements behind the findings (also useful to calibrate thresholds on real photos)."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    min_side: int
    sharpness: float
    dark_fraction: float
    bright_end: float = Field(description="99th percentile of each pixel's brightest channel (0-255)")
    bright_fraction: float
    skin_fraction: float


def measure(image: IntakeImage) -> QualityMeasures:
    rgb = np.asarray(image.image, dtype=np.float64)
    luminance = rgb @ np.array([0.299, 0.587, 0.114])
    brightest = rgb.max(axis=2)
    return QualityMeasures(
        min_side=min(image.original_size),
        sharpness=_sharpness(luminance),
        dark_fraction=float(np.mean(brightest <= 10.0)),
        bright_end=float(np.percentile(brightest, 99)),
        bright_fraction=float(np.mean(rgb.min(axis=2) >= 250.0)),
        skin_fraction=_skin_fraction(image.image),
    )


def assess_image(image: IntakeImage, modality: Modality | str = Modality.clinical,
                 thresholds: QualityThresholds | None = None) -> list[QualityFinding]:
    t = thresholds or QualityThresholds()
    m = measure(image)
    modality = Modality(modality)
    label = image.label
    found: list[QualityFinding] = []

    def add(check: QualityCheck, value: float, limit: float, message: str) -> None:
        found.append(QualityFinding(image=label, check=check, message=message, measure=round(value, 4),
                                    threshold=limit))

    if m.min_side < t.min_side:
        w, h = image.original_size
        add("low_resolution", m.min_side, t.min_side,
            f"{label} is only {w}x{h} pixels: retake it closer or at a higher resolution "
            f"(at least {t.min_side} pixels on the short side).")
    # Exposure first: in a photo that is black or blown out, sharpness and colour cannot be judged either, and one
    # cause deserves one piece of advice.
    if m.dark_fraction > t.dark_fraction:
        add("underexposed", m.dark_fraction, t.dark_fraction,
            f"{label} is too dark ({m.dark_fraction:.0%} of it is near black): retake it in better light.")
        return found
    if m.bright_end < t.dark_ceiling:
        add("underexposed", m.bright_end, t.dark_ceiling,
            f"{label} is too dark to show any detail: retake it in better light.")
        return found
    if m.bright_fraction > t.bright_fraction:
        add("overexposed", m.bright_fraction, t.bright_fraction,
            f"{label} is washed out ({m.bright_fraction:.0%} of it is blown-out white): retake it without direct "
            "flash or glare.")
        return found
    if m.sharpness < t.sharpness:
        add("blur", m.sharpness, t.sharpness,
            f"{label} looks blurred: retake it in focus, holding the camera steady and tapping the lesion to focus.")
    if modality == Modality.histopathology:  # slides are not photos of skin
        return found
    if m.skin_fraction < t.no_skin_fraction:
        add("no_skin", m.skin_fraction, t.no_skin_fraction,
            f"No skin could be recognised in {label}: check that it shows the skin problem in good light (greyscale "
            "or strongly tinted photos also trigger this).")
    elif m.skin_fraction < t.far_skin_fraction and modality == Modality.clinical:
        add("too_far", m.skin_fraction, t.far_skin_fraction,
            f"Skin fills only {m.skin_fraction:.0%} of {label}: move closer so the skin problem fills most of the "
            "frame.")
    return found


def assess_images(images: Sequence[IntakeImage], modality: Modality | str = Modality.clinical,
                  thresholds: QualityThresholds | None = None) -> list[QualityFinding]:
    """Findings for a case's images, in image order (empty: every image looks usable)."""
    return [finding for image in images for finding in assess_image(image, modality, thresholds)]


def _sharpness(luminance: np.ndarray) -> float:
    """Variance of the Laplacian of Gaussian-smoothed log luminance in the sharpest ``_TILE``-pixel tile.

    The light smoothing (sigma 1 px) keeps sensor noise, which survives defocus, from passing for detail; the
    offset in the log keeps the darkest pixels' quantisation steps from doing the same.
    """
    g = _smooth(np.log(luminance + _LOG_OFFSET) * _LOG_SCALE, _SMOOTH_SIGMA)
    if min(g.shape) < 3:
        return 0.0
    lap = g[1:-1, :-2] + g[1:-1, 2:] + g[:-2, 1:-1] + g[2:, 1:-1] - 4.0 * g[1:-1, 1:-1]
    h, w = lap.shape
    th, tw = min(_TILE, h), min(_TILE, w)
    rows, cols = h // th, w // tw
    tiles = lap[:rows * th, :cols * tw].reshape(rows, th, cols, tw)
    return float(tiles.var(axis=(1, 3)).max())


def _smooth(a: np.ndarray, sigma: float) -> np.ndarray:
    """Separable Gaussian blur (edges reflected); numpy only, a few milliseconds at the model's resolution."""
    radius = int(np.ceil(3 * sigma))
    x: np.ndarray = np.arange(-radius, radius + 1, dtype=np.float64)
    kernel = np.exp(-(x ** 2) / (2 * sigma ** 2))
    kernel /= kernel.sum()
    for axis in (0, 1):
        if a.shape[axis] <= radius:
            continue
        pad = [(radius, radius) if i == axis else (0, 0) for i in range(2)]
        padded = np.pad(a, pad, mode="reflect")
        n = a.shape[axis]
        a = sum((k * np.take(padded, np.arange(i, i + n), axis=axis) for i, k in enumerate(kernel)),
                np.zeros_like(a))
    return a


@lru_cache(maxsize=1)
def _lab_transform() -> ImageCms.ImageCmsTransform:
    return ImageCms.buildTransform(ImageCms.createProfile("sRGB"), ImageCms.createProfile("LAB"), "RGB", "LAB")


def _skin_fraction(image: Image.Image) -> float:
    """Share of pixels whose colour could be skin of any tone: warm hue (red through yellow), low to moderate
    chroma, neither black nor blown out. Wide on purpose: wood or cardboard pass too; the check only catches
    photos with no skin at all (a screenshot, a document, a grey or blue scene)."""
    thumb = image.copy()
    thumb.thumbnail((_SKIN_THUMB, _SKIN_THUMB))
    lab = np.asarray(ImageCms.applyTransform(thumb, _lab_transform()))
    lightness = lab[..., 0].astype(np.float64) * (100.0 / 255.0)
    a = lab[..., 1].view(np.int8).astype(np.float64)
    b = lab[..., 2].view(np.int8).astype(np.float64)
    chroma = np.hypot(a, b)
    hue = np.degrees(np.arctan2(b, a))
    skin = (lightness >= 8) & (lightness <= 97) & (chroma >= 3) & (chroma <= 60) & (hue >= -15) & (hue <= 110)
    return float(skin.mean())
