"""The synthetic benchmark: procedural lesion images whose classes differ in visible ways, on skin tones spanning
Fitzpatrick I-VI, written as a HAM10000-style metadata CSV (plus a ``fitzpatrick`` column) and JPEGs.

Class appearance (HAM10000 codes):
  nv    small, round, symmetric, uniform medium brown, soft edge
  mel   large, asymmetric, irregular border, variegated: dark brown, black, blue-grey and red blotches
  bkl   medium oval, waxy tan, sharp "stuck-on" border, light dots and dark fissures
  bcc   pearly pink nodule, lighter rolled border, thin red branching vessels
  df    small, pink-brown ring around a central white scar-like patch
  akiec rough red-pink patch, ill-defined border, white-yellow scale
  vasc  one to three sharply demarcated bright red / purple lobules

Deterministic by seed: the same (n, seed) gives byte-identical files.
"""

from __future__ import annotations

import csv
import math
from pathlib import Path

import numpy as np
from PIL import Image

from eval.skintone import lab_to_srgb

CLASSES = ("akiec", "bcc", "bkl", "df", "mel", "nv", "vasc")
SKIN_LAB = {"I": (76, 10, 13), "II": (67, 11, 16), "III": (61, 12, 16), "IV": (55, 13, 18), "V": (42, 13, 18),
            "VI": (30, 10, 13)}
DX_TYPE = {"mel": "histo", "bcc": "histo", "akiec": "histo", "nv": "follow_up", "bkl": "consensus",
           "df": "consensus", "vasc": "consensus"}
SITES = ("back", "trunk", "face", "lower extremity", "upper extremity", "abdomen", "chest", "scalp", "neck")
COLUMNS = ["lesion_id", "image_id", "dx", "dx_type", "age", "sex", "localization", "fitzpatrick"]
SIZE = 224


def _rgb(lab) -> np.ndarray:
    return lab_to_srgb(np.array(lab, dtype=float)).astype(float)


def _polar(rng, cx, cy, radius, irregular, asym, stretch=1.0):
    """Signed 'inside' distance (pixels) to a blob boundary r(theta) with random harmonics."""
    yy, xx = np.mgrid[0:SIZE, 0:SIZE].astype(float)
    dx, dy = xx - cx, (yy - cy) * stretch
    rho, theta = np.hypot(dx, dy), np.arctan2(dy, dx)
    r = np.ones_like(theta)
    for k in (1, 2):
        r += asym * rng.uniform(0.5, 1.0) * np.cos(k * theta + rng.uniform(0, 2 * math.pi))
    for k in range(3, 9):
        r += irregular * rng.uniform(0.3, 1.0) / (k - 2) ** 0.5 * np.cos(k * theta + rng.uniform(0, 2 * math.pi))
    return radius * r - rho, rho, theta


def _alpha(inside, edge):
    return np.clip(inside / max(edge, 1e-3) + 0.5, 0.0, 1.0)


def _blobs(rng, n, cx, cy, spread, size):
    yy, xx = np.mgrid[0:SIZE, 0:SIZE].astype(float)
    field = np.zeros((SIZE, SIZE))
    for _ in range(n):
        bx, by = cx + rng.normal(0, spread), cy + rng.normal(0, spread)
        s = rng.uniform(*size)
        field = np.maximum(field, np.exp(-((xx - bx) ** 2 + (yy - by) ** 2) / (2 * s * s)))
    return field


def _paint(img, alpha, colour):
    a = alpha[..., None]
    return img * (1 - a) + np.asarray(colour, dtype=float) * a


def draw_lesion(dx: str, fitzpatrick: str, rng: np.random.Generator) -> Image.Image:
    L, a, b = SKIN_LAB[fitzpatrick]
    base = _rgb((L + rng.uniform(-1.5, 1.5), a + rng.uniform(-1, 1), b + rng.uniform(-1, 1)))
    yy, xx = np.mgrid[0:SIZE, 0:SIZE].astype(float)
    shade = 1 + 0.04 * ((xx / SIZE - 0.5) * rng.uniform(-1, 1) + (yy / SIZE - 0.5) * rng.uniform(-1, 1))
    img = base[None, None, :] * shade[..., None] + rng.normal(0, 2.0, (SIZE, SIZE, 3))
    cx, cy = SIZE / 2 + rng.uniform(-12, 12), SIZE / 2 + rng.uniform(-12, 12)
    if dx == "nv":
        inside, _, _ = _polar(rng, cx, cy, rng.uniform(17, 25), 0.02, 0.03, rng.uniform(1.0, 1.12))
        img = _paint(img, _alpha(inside, 3.0), _rgb((38, 12, 22)))
    elif dx == "mel":
        inside, _, _ = _polar(rng, cx, cy, rng.uniform(36, 48), 0.10, 0.16, rng.uniform(0.85, 1.25))
        alpha = _alpha(inside, rng.uniform(1.5, 4))
        img = _paint(img, alpha, _rgb((30, 12, 18)))
        for colour, n in (((12, 2, 3), 3), ((48, -3, -14), 3), ((45, 38, 22), 2), ((50, 14, 30), 2)):
            img = _paint(img, alpha * _blobs(rng, n, cx, cy, 16, (5, 11)), _rgb(colour))
    elif dx == "bkl":
        inside, _, _ = _polar(rng, cx, cy, rng.uniform(26, 36), 0.03, 0.05, rng.uniform(1.15, 1.45))
        alpha = _alpha(inside, 1.0)
        img = _paint(img, alpha, _rgb((60, 9, 30)))
        dots = (rng.random((SIZE, SIZE)) > 0.992).astype(float)
        img = _paint(img, alpha * dots, _rgb((85, 3, 18)))
        for _ in range(4):
            y0 = rng.uniform(cy - 20, cy + 20)
            crack = np.exp(-((yy - y0 - 0.4 * (xx - cx)) ** 2) / 2.0) * (np.abs(xx - cx) < 20)
            img = _paint(img, alpha * crack * 0.7, _rgb((42, 10, 22)))
    elif dx == "bcc":
        inside, rho, _ = _polar(rng, cx, cy, rng.uniform(22, 32), 0.03, 0.04)
        alpha = _alpha(inside, 2.0)
        img = _paint(img, alpha, _rgb((76, 16, 8)))
        img = _paint(img, alpha * np.exp(-(inside - 3) ** 2 / 6.0), _rgb((88, 8, 5)))
        for _ in range(5):
            ang, length = rng.uniform(0, 2 * math.pi), rng.uniform(10, 24)
            x0, y0 = cx + rng.normal(0, 6), cy + rng.normal(0, 6)
            t = np.clip(((xx - x0) * math.cos(ang) + (yy - y0) * math.sin(ang)) / length, 0, 1)
            px, py = x0 + t * length * math.cos(ang), y0 + t * length * math.sin(ang)
            py = py + 3 * np.sin(t * 6)
            vessel = np.exp(-((xx - px) ** 2 + (yy - py) ** 2) / 1.2)
            img = _paint(img, alpha * vessel, _rgb((42, 52, 28)))
    elif dx == "df":
        inside, rho, _ = _polar(rng, cx, cy, rng.uniform(15, 21), 0.03, 0.04)
        img = _paint(img, _alpha(inside, 5.0), _rgb((50, 20, 20)))
        img = _paint(img, np.clip(1 - rho / rng.uniform(6, 9), 0, 1) ** 0.7, _rgb((86, 4, 8)))
    elif dx == "akiec":
        inside, _, _ = _polar(rng, cx, cy, rng.uniform(28, 38), 0.08, 0.10)
        alpha = _alpha(inside, 9.0)
        img = _paint(img, alpha, _rgb((55, 36, 18)))
        scale = _blobs(rng, 14, cx, cy, 12, (1.5, 3.5)) * (rng.random((SIZE, SIZE)) > 0.4)
        img = _paint(img, alpha * scale, _rgb((88, 2, 16)))
    elif dx == "vasc":
        for i in range(int(rng.integers(1, 4))):
            ox, oy = (rng.normal(0, 10), rng.normal(0, 10)) if i else (0.0, 0.0)
            inside, _, _ = _polar(rng, cx + ox, cy + oy, rng.uniform(10, 18), 0.02, 0.03)
            colour = (38, 52, 12) if rng.random() < 0.6 else (30, 36, -12)
            img = _paint(img, _alpha(inside, 1.0), _rgb(colour))
    else:
        raise ValueError(f"unknown synthetic class {dx!r}; choose from {', '.join(CLASSES)}")
    return Image.fromarray(np.clip(np.round(img), 0, 255).astype(np.uint8), "RGB")


def make_synthetic(out_dir: Path, n: int = 140, seed: int = 0, classes: tuple[str, ...] = CLASSES) -> Path:
    """Write ``out_dir/metadata.csv`` and ``out_dir/images/*.jpg``; returns the CSV path. Classes and skin types
    are balanced (round-robin, then shuffled)."""
    if n < 1:
        raise ValueError("--n must be at least 1")
    out_dir = Path(out_dir)
    (out_dir / "images").mkdir(parents=True, exist_ok=True)
    rng = np.random.default_rng(seed)
    dxs = [classes[i % len(classes)] for i in range(n)]
    fsts = [list(SKIN_LAB)[i % 6] for i in range(n)]
    rng.shuffle(dxs)
    rng.shuffle(fsts)
    rows = []
    for i, (dx, fst) in enumerate(zip(dxs, fsts, strict=False)):
        image_id = f"SYN_{i:07d}"
        draw_lesion(dx, fst, rng).save(out_dir / "images" / f"{image_id}.jpg", quality=92)
        rows.append({"lesion_id": f"SYNL_{i:07d}", "image_id": image_id, "dx": dx, "dx_type": DX_TYPE[dx],
                     "age": int(rng.integers(20, 86)), "sex": "male" if rng.random() < 0.5 else "female",
                     "localization": SITES[int(rng.integers(len(SITES)))], "fitzpatrick": fst})
    csv_path = out_dir / "metadata.csv"
    with csv_path.open("w", newline="", encoding="utf-8") as fh:
        writer = csv.DictWriter(fh, fieldnames=COLUMNS)
        writer.writeheader()
        writer.writerows(rows)
    return csv_path
