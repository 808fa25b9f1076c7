"""Turn one cached model output into one per-sample record (``eval.results.SampleRecord``).

Records keep everything a metric needs (ranked condition ids, confidence, malignancy score, report flags, text
scores), so ``eval compare`` can rescore two saved runs without their raw outputs. Rules (docs/eval.md):

* a failed sample is wrong, never dropped: it keeps its error and no prediction;
* a ``condition_id`` that is not a canonical id is normalised through the ontology (``melanoma_in_situ`` ->
  ``melanoma``) or left unmapped, and the pair is kept in ``noncanonical_ids`` for the summary;
* an output that cannot be read at all (a hand-edited cache line, a field of the wrong type) becomes that
  sample's ``invalid_model_output`` error: the run never stops on an odd output.
"""

from __future__ import annotations

from eval.conditions import ONTOLOGY, at_risk, canonical_id, matches
from eval.datasets import Sample
from eval.metrics import report as rep
from eval.metrics.text import bleu_stats, rouge_l, token_f1
from eval.metrics.vqa import extract_answer, is_correct
from eval.results import SampleRecord
from eval.task import TaskConfig

MAX_RANKED = 5  # the report schema's differential holds at most five items


def _base_record(sample: Sample, entry: dict) -> SampleRecord:
    return SampleRecord(
        id=sample.id, status="ok" if entry.get("status") == "ok" else "error", error_kind=entry.get("error_kind"),
        error=entry.get("error"), cached=bool(entry.get("cached")), latency_ms=entry.get("latency_ms"),
        label=sample.label, label_id=sample.label_id, fitzpatrick=sample.fitzpatrick, fst_group=sample.fst_group,
        monk=sample.monk, fitzpatrick_estimated=entry.get("fitzpatrick_estimated"), ita=entry.get("ita"),
    )


def label_at_risk(sample: Sample) -> bool | None:
    """The positive class of ``auroc_malignant``: malignant (the dataset's biopsy flag when it gives one, else the
    ontology) or premalignant (the ontology's flag, shared with the safety layer)."""
    onto = at_risk(sample.label_id)
    premalignant = sample.label_id in ONTOLOGY and ONTOLOGY.get(sample.label_id).premalignant
    if sample.malignant is not None:
        return sample.malignant or premalignant
    return onto


# Outputs that never validated as a report: after the retry, or cut off by the token budget first.
INVALID_OUTPUT_KINDS = frozenset({"invalid_model_output", "max_tokens_too_small"})


def _likelihood(item: dict) -> float:
    return float(item["likelihood"])


def report_record(sample: Sample, entry: dict) -> SampleRecord:
    r = _base_record(sample, entry)
    r.label_malignant = label_at_risk(sample)
    if r.status != "ok":
        r.schema_valid = False if entry.get("error_kind") in INVALID_OUTPUT_KINDS else None
        r.correct = r.top3_correct = False if sample.label_id else None
        return r
    report = entry["output"]
    diag = report["diagnosis"]
    r.prediction = str(diag["condition"])
    r.pred_id, raw = canonical_id(diag)
    ranked = sorted(report["differential"], key=lambda d: -_likelihood(d))[:MAX_RANKED]  # stable: ties keep order
    ids = [canonical_id(d) for d in ranked]
    r.differential_ids = [cid for cid, _ in ids]
    r.top3_ids = r.differential_ids[:3]
    pairs = [(raw, r.pred_id), *((x, cid) for cid, x in ids)]
    r.noncanonical_ids = list(dict.fromkeys(f"{x} -> {cid or 'unmapped'}" for x, cid in pairs if x))
    r.schema_valid, r.citation_valid = True, rep.citation_valid(report)
    r.cites, r.abstained, r.urgent = rep.cites_anything(report), rep.abstained(report), rep.urgent(report)
    if ranked:
        r.confidence = _likelihood(ranked[0])
        r.malignancy_score = min(1.0, sum(_likelihood(d) for d, (cid, _) in zip(ranked, ids, strict=True)
                                          if at_risk(cid)))
    if sample.label_id:
        r.correct = matches(r.pred_id, sample.label_id)  # top3_correct needs the label set: eval.metrics.columns
        r.scores["calibration_correct"] = float(bool(ranked) and matches(r.differential_ids[0], sample.label_id))
    return r


def closed_vqa_record(sample: Sample, entry: dict) -> SampleRecord:
    r = _base_record(sample, entry)
    r.question, r.gold = sample.question, sample.answer
    if r.status != "ok":
        r.correct = False
        return r
    r.prediction = str(entry["output"]["text"])
    r.extracted = extract_answer(r.prediction, sample.choices)
    r.correct = is_correct(r.extracted, sample.answer or "", sample.choices)
    return r


def open_vqa_record(sample: Sample, entry: dict, bert=None) -> SampleRecord:
    r = _base_record(sample, entry)
    r.question = sample.question
    refs = [x.text for x in sample.references]
    text = str(entry["output"]["text"]) if r.status == "ok" else ""
    r.prediction = text if r.status == "ok" else None
    r.scores["token_f1"], r.scores["rouge_l"] = token_f1(text, refs), rouge_l(text, refs)
    r.bleu_stats = bleu_stats(text, refs).to_list()
    weights = [x.weight for x in sample.references]
    r.delta_bleu_stats = bleu_stats(text, refs, weights).to_list() if max(weights) > 0 else None
    if bert is not None:
        r.scores["bertscore"] = bert.score(text, refs) if text else 0.0
    return r


def _unreadable(task: TaskConfig, sample: Sample, entry: dict, err: Exception, bert=None) -> SampleRecord:
    """The output is there but not in the shape its task needs: that sample's ``invalid_model_output``."""
    failed = {**entry, "status": "error", "error_kind": "invalid_model_output",
              "error": f"the output of sample {sample.id} could not be scored ({type(err).__name__}: {err})"[:300]}
    return _make(task, sample, failed, bert)


def _make(task: TaskConfig, sample: Sample, entry: dict, bert=None) -> SampleRecord:
    if task.type in ("classification", "report"):
        return report_record(sample, entry)
    if task.type == "closed_vqa":
        return closed_vqa_record(sample, entry)
    return open_vqa_record(sample, entry, bert)


def make_record(task: TaskConfig, sample: Sample, entry: dict, bert=None) -> SampleRecord:
    try:
        return _make(task, sample, entry, bert)
    except (KeyError, TypeError, ValueError, AttributeError, IndexError) as err:
        return _unreadable(task, sample, entry, err, bert)
