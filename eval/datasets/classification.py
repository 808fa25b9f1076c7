"""Adapters for the published dermatology classification datasets, reading their files exactly as released.

Each adapter returns raw labels (the dataset's own codes or names); the loader maps them through the task's
``label_map`` and then the ontology.
"""

from __future__ import annotations

import ast
from collections import Counter
from pathlib import Path

from assistant.core.skintone import fitzpatrick_group, parse_fitzpatrick, parse_monk
from eval.datasets.base import (
    DatasetError,
    ImageIndex,
    LoadedDataset,
    Sample,
    Skipped,
    age_from,
    bool_from,
    read_csv,
    resolve_images,
    sex_from,
)

HAM_COLUMNS = ["lesion_id", "image_id", "dx", "dx_type", "age", "sex", "localization"]


def _ctx(age=None, sex=None, body_site=None, symptoms=None) -> dict:
    ctx: dict = {}
    if (a := age_from(age)) is not None:
        ctx["age"] = a
    if (s := sex_from(sex)) is not None:
        ctx["sex"] = s
    if body_site and str(body_site).strip().lower() not in {"unknown", "unk", "nan", ""}:
        ctx["body_site"] = str(body_site).strip()[:100]
    if symptoms:
        ctx["symptoms"] = {k: v for k, v in symptoms.items() if v is not None}
    return ctx


def ham10000(data: Path, images_root: Path, **_: object) -> LoadedDataset:
    """HAM10000_metadata.csv (+ an optional ``fitzpatrick`` column, which the synthetic benchmark writes)."""
    rows = read_csv(data, HAM_COLUMNS, "HAM10000 metadata file")
    index, out = ImageIndex(images_root), LoadedDataset([], files=[data])
    for row in rows:
        sid = row["image_id"]
        images = resolve_images(index, [sid], sid, out.skipped)
        if images is None:
            continue
        fitz = parse_fitzpatrick(row.get("fitzpatrick"))
        out.samples.append(Sample(
            id=sid, images=images, label=row["dx"], fitzpatrick=fitz, fst_group=fitzpatrick_group(fitz),
            context=_ctx(row["age"], row["sex"], row["localization"]),
            meta={"lesion_id": row["lesion_id"], "dx_type": row["dx_type"]},
        ))
    return out


ISIC2019_CLASSES = ["MEL", "NV", "BCC", "AK", "BKL", "DF", "VASC", "SCC"]


def isic2019(data: Path, images_root: Path, metadata: str | None = None, **_: object) -> LoadedDataset:
    """ISIC_2019_Training_GroundTruth.csv: ``image`` + one-hot class columns (``UNK`` optional); optionally joined
    with ISIC_2019_Training_Metadata.csv (``image, age_approx, anatom_site_general, lesion_id, sex``)."""
    rows = read_csv(data, ["image", *ISIC2019_CLASSES], "ISIC 2019 ground-truth file")
    classes = ISIC2019_CLASSES + (["UNK"] if rows and "UNK" in rows[0] else [])
    meta_rows: dict[str, dict] = {}
    files = [data]
    if metadata:
        mpath = Path(metadata) if Path(metadata).is_absolute() else data.parent / metadata
        meta_rows = {r["image"]: r for r in read_csv(mpath, ["image", "age_approx", "anatom_site_general", "sex"],
                                                     "ISIC 2019 metadata file")}
        files.append(mpath)
    index, out = ImageIndex(images_root), LoadedDataset([], files=files)
    for row in rows:
        sid = row["image"]
        hot = [c for c in classes if _one(row[c])]
        if len(hot) != 1:
            out.skipped.append(Skipped(sid, f"expected exactly one class marked 1, found {len(hot)}"))
            continue
        images = resolve_images(index, [sid], sid, out.skipped)
        if images is None:
            continue
        m = meta_rows.get(sid, {})
        out.samples.append(Sample(id=sid, images=images, label=hot[0],
                                  context=_ctx(m.get("age_approx"), m.get("sex"), m.get("anatom_site_general")),
                                  meta={"lesion_id": m.get("lesion_id")} if m.get("lesion_id") else {}))
    return out


def _one(value: str) -> bool:
    try:
        return float(value) == 1.0
    except ValueError:
        return False


PAD_COLUMNS = ["img_id", "diagnostic", "fitspatrick", "age", "region", "itch", "grew", "hurt", "changed", "bleed",
               "elevation"]


def pad_ufes20(data: Path, images_root: Path, **_: object) -> LoadedDataset:
    """PAD-UFES-20 metadata.csv (the column really is spelled ``fitspatrick``; ``UNK`` means unknown)."""
    rows = read_csv(data, PAD_COLUMNS, "PAD-UFES-20 metadata file")
    index, out = ImageIndex(images_root), LoadedDataset([], files=[data])
    for row in rows:
        sid = row["img_id"]
        images = resolve_images(index, [sid], sid, out.skipped)
        if images is None:
            continue
        fitz = parse_fitzpatrick(row["fitspatrick"])
        symptoms = {"itch": bool_from(row["itch"]), "growth": bool_from(row["grew"]), "pain": bool_from(row["hurt"]),
                    "change": bool_from(row["changed"]), "bleeding": bool_from(row["bleed"])}
        out.samples.append(Sample(
            id=sid, images=images, label=row["diagnostic"], fitzpatrick=fitz, fst_group=fitzpatrick_group(fitz),
            context=_ctx(row["age"], row.get("gender"), row["region"], symptoms),
            meta={k: row[k] for k in ("patient_id", "lesion_id", "elevation", "biopsed") if k in row},
        ))
    return out


F17K_COLUMNS = ["md5hash", "fitzpatrick_scale", "fitzpatrick_centaur", "label", "nine_partition_label",
                "three_partition_label", "qc", "url"]


def fitzpatrick17k(data: Path, images_root: Path, qc_only: bool = False, exclude_qc: list[str] | None = None,
                   **_: object) -> LoadedDataset:
    """fitzpatrick17k.csv; images are ``<md5hash>.jpg``; ``fitzpatrick_scale`` -1 = unknown skin type.

    ``qc_only`` keeps the dermatologist-reviewed subset (non-empty ``qc``); ``exclude_qc`` drops rows whose ``qc``
    starts with one of the given prefixes (e.g. ``"3"`` = wrongly labelled)."""
    rows = read_csv(data, F17K_COLUMNS, "Fitzpatrick17k file")
    index, out = ImageIndex(images_root), LoadedDataset([], files=[data])
    for row in rows:
        sid = row["md5hash"]
        if qc_only and not row["qc"]:
            continue
        if exclude_qc and any(row["qc"].startswith(str(p)) for p in exclude_qc):
            out.skipped.append(Skipped(sid, f"excluded by qc: {row['qc']}"))
            continue
        images = resolve_images(index, [sid], sid, out.skipped)
        if images is None:
            continue
        fitz = parse_fitzpatrick(row["fitzpatrick_scale"])
        three = row["three_partition_label"].lower()
        out.samples.append(Sample(
            id=sid, images=images, label=row["label"], fitzpatrick=fitz, fst_group=fitzpatrick_group(fitz),
            malignant=True if three == "malignant" else False if three in {"benign", "non-neoplastic"} else None,
            meta={"nine_partition_label": row["nine_partition_label"], "three_partition_label": three,
                  "fitzpatrick_centaur": row["fitzpatrick_centaur"], "qc": row["qc"]},
        ))
    return out


def ddi(data: Path, images_root: Path, **_: object) -> LoadedDataset:
    """ddi_metadata.csv from Diverse Dermatology Images: skin_tone is a group (12, 34, 56), not a single type."""
    rows = read_csv(data, ["DDI_ID", "DDI_file", "skin_tone", "malignant", "disease"], "DDI metadata file")
    index, out = ImageIndex(images_root), LoadedDataset([], files=[data])
    for row in rows:
        sid = row["DDI_file"] or row["DDI_ID"]
        images = resolve_images(index, [row["DDI_file"]], sid, out.skipped)
        if images is None:
            continue
        group = str(int(float(row["skin_tone"]))) if row["skin_tone"] else None
        out.samples.append(Sample(
            id=sid, images=images, label=row["disease"], fst_group=group if group in {"12", "34", "56"} else None,
            malignant=bool_from(row["malignant"]), meta={"DDI_ID": row["DDI_ID"]},
        ))
    return out


def _literal(text: str, default):
    if not text:
        return default
    try:
        return ast.literal_eval(text)
    except (ValueError, SyntaxError):
        return default


def scin(data: Path, images_root: Path, labels: str = "scin_labels.csv", **_: object) -> LoadedDataset:
    """SCIN: ``scin_cases.csv`` (``data``) joined with ``scin_labels.csv`` on ``case_id``.

    The label is the condition with the highest weight in ``weighted_skin_condition_label`` (ties: the first
    listed; all weights kept in ``meta``). Fitzpatrick: the most frequent dermatologist label
    (``dermatologist_fitzpatrick_skin_type_label_1..3``), else the self-reported ``fitzpatrick_skin_type``.
    Monk: ``monk_skin_tone_label_us``, else ``monk_skin_tone_label_india``."""
    cases = read_csv(data, ["case_id", "image_1_path", "image_2_path", "image_3_path"], "SCIN cases file")
    lpath = Path(labels) if Path(labels).is_absolute() else data.parent / labels
    label_rows = {r["case_id"]: r for r in read_csv(lpath, ["case_id", "weighted_skin_condition_label"],
                                                    "SCIN labels file")}
    index, out = ImageIndex(images_root), LoadedDataset([], files=[data, lpath])
    for case in cases:
        sid = case["case_id"]
        lab = label_rows.get(sid)
        weights = _literal(lab["weighted_skin_condition_label"], {}) if lab else {}
        if not isinstance(weights, dict) or not weights:
            out.skipped.append(Skipped(sid, "no dermatologist condition label"))
            continue
        top = max(weights.values())
        label = next(k for k, v in weights.items() if v == top)
        names = [case[f"image_{i}_path"] for i in (1, 2, 3) if case.get(f"image_{i}_path")]
        images = resolve_images(index, names, sid, out.skipped)
        if images is None:
            continue
        derm = [parse_fitzpatrick(lab.get(f"dermatologist_fitzpatrick_skin_type_label_{i}")) for i in (1, 2, 3)]
        derm = [d for d in derm if d]
        fitz = Counter(derm).most_common(1)[0][0] if derm else parse_fitzpatrick(case.get("fitzpatrick_skin_type"))
        monk = parse_monk(lab.get("monk_skin_tone_label_us")) or parse_monk(lab.get("monk_skin_tone_label_india"))
        sex = (case.get("sex_at_birth") or "").lower()
        out.samples.append(Sample(
            id=sid, images=images, label=label, fitzpatrick=fitz, fst_group=fitzpatrick_group(fitz), monk=monk,
            context=_ctx(None, sex), meta={"label_weights": weights,
                                           "fitzpatrick_source": "dermatologist" if derm else "self_reported"},
        ))
    return out


def image_folder(data: Path, images_root: Path, **_: object) -> LoadedDataset:
    """A folder of class sub-folders: ``data/<class>/<image>``; the class is the sub-folder name."""
    root = Path(data)
    if not root.is_dir():
        raise DatasetError(f"image folder not found: {root}")
    out = LoadedDataset([])
    for cls in sorted(p for p in root.iterdir() if p.is_dir()):
        for img in sorted(cls.rglob("*")):
            if img.is_file() and img.suffix.lower() in (".jpg", ".jpeg", ".png", ".bmp", ".webp"):
                out.samples.append(Sample(id=f"{cls.name}/{img.relative_to(cls).as_posix()}", images=[img],
                                          label=cls.name))
    return out
