"""Adapters for dermatology VQA / captioning datasets and the generic CSV / JSONL manifests."""

from __future__ import annotations

import json
from pathlib import Path

from assistant.core.case import MAX_IMAGES_PER_CASE
from assistant.core.skintone import fitzpatrick_group, parse_fitzpatrick, parse_monk
from eval.datasets.base import (
    DatasetError,
    ImageIndex,
    LoadedDataset,
    Reference,
    Sample,
    Skipped,
    read_csv,
    read_json,
    read_jsonl,
    require_keys,
    resolve_images,
)

YES_NO = ("yes", "no")


def mmskin_vqa(data: Path, images_root: Path, yesno_only: bool = False, **_: object) -> LoadedDataset:
    """MM-Skin VQA CSV (``image, question, answer``). With ``yesno_only`` only yes/no rows are kept, as closed VQA."""
    rows = read_csv(data, ["image", "question", "answer"], "MM-Skin VQA file")
    index, out = ImageIndex(images_root), LoadedDataset([], files=[data])
    for i, row in enumerate(rows):
        sid = f"{i:06d}"
        answer = row["answer"].strip()
        closed = answer.lower().rstrip(".") in YES_NO
        if yesno_only and not closed:
            continue
        images = resolve_images(index, [row["image"]], sid, out.skipped)
        if images is None:
            continue
        out.samples.append(Sample(
            id=sid, images=images, question=row["question"],
            answer=answer.lower().rstrip(".") if yesno_only else None,
            references=[] if yesno_only else [Reference(answer)], meta={"image": row["image"]},
        ))
    return out


def mediqa_weight(author: dict | None, completeness: float, contains_freq_ans: float) -> float:
    """The MEDIQA-M3G 2024 reference weight (its official scorer's ``get_weight_schemes``).

    ``w = 0.6 + 0.1 * (md + senior + freq + complete)`` where md = the author's ``validation_level`` starts with
    ``md``, senior = ``rank_level`` >= level_4 (``unk`` = level_0), freq = ``contains_freq_ans`` == 1.0 and
    complete = ``completeness`` == 1.0 -> weights 0.6 .. 1.0. Without the user-info file every weight is 1.0
    (as the official scorer does)."""
    if author is None:
        return 1.0
    md = str(author.get("validation_level", "")).startswith("md")
    rank = str(author.get("rank_level", "level_0")).strip()
    try:
        senior = int(rank.replace("level_", "")) >= 4
    except ValueError:
        senior = False
    freq = float(contains_freq_ans or 0) == 1.0
    complete = float(completeness or 0) == 1.0
    return round(0.6 + 0.1 * (md + senior + freq + complete), 10)


def mediqa_m3g(data: Path, images_root: Path, userinfo: str | None = "df_userinfo.csv", lang: str = "en",
               **_: object) -> LoadedDataset:
    """MEDIQA-M3G 2024 / DermaVQA JSON list of encounters with ``responses`` (references) and the author file
    ``df_userinfo.csv`` (``author_id, validation_level, rank_level``) used for deltaBLEU weights."""
    encounters = read_json(data, "MEDIQA-M3G file")
    if not isinstance(encounters, list):
        raise DatasetError(f"MEDIQA-M3G file {data} must hold a JSON list of encounters")
    files = [data]
    authors: dict[str, dict] | None = None
    if userinfo:
        upath = Path(userinfo) if Path(userinfo).is_absolute() else data.parent / userinfo
        if upath.is_file():
            authors = {r["author_id"]: r for r in read_csv(upath, ["author_id", "validation_level", "rank_level"],
                                                           "MEDIQA-M3G user-info file")}
            files.append(upath)
    index, out = ImageIndex(images_root), LoadedDataset([], files=files)
    for i, enc in enumerate(encounters):
        require_keys(enc, ["encounter_id", "image_ids", f"query_title_{lang}", f"query_content_{lang}"],
                     f"MEDIQA-M3G file {data} encounter {i}")
        sid = enc["encounter_id"]
        responses = enc.get("responses") or []
        refs = []
        for j, resp in enumerate(responses):
            require_keys(resp, [f"content_{lang}", "author_id"], f"MEDIQA-M3G file {data} {sid} response {j}")
            author = None if authors is None else authors.get(resp["author_id"], {})
            refs.append(Reference(resp[f"content_{lang}"], mediqa_weight(
                author, resp.get("completeness", 0.0), resp.get("contains_freq_ans", 0.0))))
        if not refs:
            out.skipped.append(Skipped(sid, "no reference responses"))
            continue
        images = resolve_images(index, list(enc["image_ids"]), sid, out.skipped)
        if images is None:
            continue
        question = f"{enc[f'query_title_{lang}']}\n{enc[f'query_content_{lang}']}".strip()
        out.samples.append(Sample(id=sid, images=images[:MAX_IMAGES_PER_CASE], question=question, references=refs,
                                  meta={"n_images": len(images)}))
    return out


def skincap(data: Path, images_root: Path, caption_column: str = "caption_zh_polish_en", **_: object) -> LoadedDataset:
    """SkinCAP CSV (``id, skincap_file_path, disease, caption_...``): the caption is the reference, ``disease`` the
    label; Fitzpatrick from ``fitzpatrick_scale`` or ``fitzpatrick`` when present."""
    rows = read_csv(data, ["id", "skincap_file_path", "disease", caption_column], "SkinCAP file")
    index, out = ImageIndex(images_root), LoadedDataset([], files=[data])
    for row in rows:
        sid = row["id"]
        if not row[caption_column]:
            out.skipped.append(Skipped(sid, f"empty {caption_column}"))
            continue
        images = resolve_images(index, [row["skincap_file_path"]], sid, out.skipped)
        if images is None:
            continue
        fitz = parse_fitzpatrick(row.get("fitzpatrick_scale") or row.get("fitzpatrick"))
        out.samples.append(Sample(id=sid, images=images, label=row["disease"], fitzpatrick=fitz,
                                  fst_group=fitzpatrick_group(fitz), references=[Reference(row[caption_column])]))
    return out


def _choices(value) -> list[str]:
    if isinstance(value, list):
        return [str(v) for v in value]
    if not value:
        return []
    text = str(value).strip()
    if text.startswith("["):
        return [str(v) for v in json.loads(text)]
    return [c.strip() for c in text.split("|") if c.strip()]


def _manifest_sample(row: dict, index: ImageIndex, out: LoadedDataset, i: int, cols: dict) -> None:
    sid = str(row.get(cols["id"]) or f"{i:06d}")
    raw = row.get(cols["images"]) if cols["images"] in row else row.get(cols["image"])
    names = raw if isinstance(raw, list) else [n for n in str(raw or "").split("|") if n]
    images = resolve_images(index, names, sid, out.skipped)
    if images is None:
        return
    refs = row.get(cols["references"])
    if isinstance(refs, str):
        refs = [refs]
    references = [Reference(r["text"], float(r.get("weight", 1.0))) if isinstance(r, dict) else Reference(str(r))
                  for r in (refs or [])]
    fitz = parse_fitzpatrick(row.get(cols["fitzpatrick"]))
    group = str(row.get(cols["fst_group"]) or "") or fitzpatrick_group(fitz)
    ctx = row.get("context") if isinstance(row.get("context"), dict) else {}
    answer = row.get(cols["answer"])
    out.samples.append(Sample(
        id=sid, images=images, label=(row.get(cols["label"]) or None), question=row.get(cols["question"]) or None,
        choices=_choices(row.get(cols["choices"])), answer=str(answer) if answer not in (None, "") else None,
        references=references, context=ctx, fitzpatrick=fitz, fst_group=group if group in {"12", "34", "56"} else None,
        monk=parse_monk(row.get(cols["monk"])),
    ))


_DEFAULT_COLS = {"id": "id", "image": "image", "images": "images", "label": "label", "question": "question",
                 "choices": "choices", "answer": "answer", "references": "references",
                 "fitzpatrick": "fitzpatrick", "fst_group": "fst_group", "monk": "monk"}


def _columns(overrides: dict) -> dict:
    cols = dict(_DEFAULT_COLS)
    for key, value in overrides.items():
        if key.endswith("_column") and key[:-7] in cols:
            cols[key[:-7]] = value
    return cols


def csv_manifest(data: Path, images_root: Path, required: list[str] | None = None, **options) -> LoadedDataset:
    """A generic CSV: one row per sample; columns named by ``<field>_column`` options (defaults: id, image,
    label, question, choices (``a|b|c`` or a JSON list), answer, references, fitzpatrick, fst_group, monk)."""
    cols = _columns(options)
    rows = read_csv(data, required or [cols["image"]], "CSV manifest")
    index, out = ImageIndex(images_root), LoadedDataset([], files=[data])
    for i, row in enumerate(rows):
        _manifest_sample(row, index, out, i, cols)
    return out


def jsonl_manifest(data: Path, images_root: Path, **options) -> LoadedDataset:
    """A generic JSONL manifest: ``{"id", "image" | "images": [...], "label", "question", "choices", "answer",
    "references": [str | {"text", "weight"}], "fitzpatrick", "fst_group", "monk", "context": {...}}``."""
    cols = _columns(options)
    rows = read_jsonl(data, "JSONL manifest")
    index, out = ImageIndex(images_root), LoadedDataset([], files=[data])
    for i, row in enumerate(rows):
        if cols["image"] not in row and cols["images"] not in row:
            raise DatasetError(f"JSONL manifest {data} line {i + 1} is missing field 'image' (or 'images')")
        _manifest_sample(row, index, out, i, cols)
    return out
