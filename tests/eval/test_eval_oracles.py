"""Reference implementations as oracles, through the real harness (JSONL manifest -> ReplayPipeline -> runner).

Seeded random predictions include predictions outside the label set, unmappable text, non-canonical ids, repeated
conditions in a differential, tied likelihoods, likelihoods on bin edges and failed samples (error lines, missing
lines, reports that do not validate). Every classification metric must equal scikit-learn; BLEU must equal
sacreBLEU, ROUGE-L rouge-score, token F1 the SQuAD script (as shipped in transformers); deltaBLEU must equal the
published formula worked by hand.
"""

from __future__ import annotations

import math
import warnings

import numpy as np
import pytest
from rouge_score import rouge_scorer
from sacrebleu.metrics import BLEU
from sklearn.calibration import calibration_curve
from sklearn.metrics import (
    accuracy_score,
    balanced_accuracy_score,
    confusion_matrix,
    f1_score,
    precision_recall_fscore_support,
    roc_auc_score,
    top_k_accuracy_score,
)
from transformers.data.metrics.squad_metrics import compute_f1

from assistant.core.ontology import default_ontology
from eval.metrics.text import bleu_stats, corpus_bleu, sum_stats
from eval.replay import ReplayPipeline
from eval.runner import EvalSettings, run_eval
from eval.task import load_task
from support.evalkit import manifest, report, task_file, write_jsonl

ONTO = default_ontology()
LABELS = ["basal_cell_carcinoma", "dermatofibroma", "melanocytic_nevus", "melanoma", "seborrheic_keratosis"]
OUTSIDE = ["psoriasis", "acne", "lentigo", "actinic_keratosis"]  # actinic keratosis: premalignant, outside the set
NONCANONICAL = ["melanoma_in_situ", "Basal-Cell-Carcinoma", "nevus"]
POOL = [*LABELS, *OUTSIDE, *NONCANONICAL, None]
CLASSIFICATION = ["accuracy", "balanced_accuracy", "macro_f1", "top3_accuracy", "auroc_malignant", "ece"]
N = 240


def _cid(condition_id: str | None) -> str | None:
    return ONTO.normalize(condition_id) if condition_id else None


def _class(cid: str | None) -> str:
    if cid is None:
        return "<unmapped>"
    return cid if cid in LABELS else next((lab for lab in LABELS if ONTO.matches(cid, lab)), cid)


def _random_lines(rng: np.random.Generator, ids: list[str]) -> tuple[list[dict], dict[str, list]]:
    """Replay lines, and the differential ([(condition_id, likelihood)]) and diagnosis behind each ok report."""
    lines, truth = [], {}
    for sid in ids:
        u = rng.random()
        if u < 0.08:
            lines.append({"sample_id": sid, "error": "backend down", "error_kind": "backend_unavailable"})
            continue
        if u < 0.11:
            continue  # no line: missing_output
        items = [(POOL[j], float(rng.choice(np.round(np.arange(0.05, 0.95, 0.05), 2))))
                 for j in rng.integers(0, len(POOL), size=int(rng.integers(1, 6)))]
        diagnosis = items[int(np.argmax([p for _, p in items]))][0] if rng.random() < 0.8 else POOL[
            int(rng.integers(0, len(POOL)))]
        if u < 0.14:
            bad = report(items, diagnosis, validate=False)
            bad["differential"][0]["likelihood"] = 1.5  # does not validate: invalid_model_output
            lines.append({"sample_id": sid, "report": bad})
            continue
        lines.append({"sample_id": sid, "report": report(items, diagnosis)})
        truth[sid] = [items, diagnosis]
    return lines, truth


@pytest.fixture(scope="module")
def classification_run(tmp_path_factory):
    tmp = tmp_path_factory.mktemp("oracle_cls")
    rng = np.random.default_rng(7)
    rows = [{"id": f"s{i:03d}", "label": str(rng.choice(LABELS)), "fitzpatrick": str(rng.choice(["I", "II", "III"]))}
            for i in range(N)]
    data = manifest(tmp / "data", rows)
    lines, truth = _random_lines(rng, [r["id"] for r in rows])
    task = load_task(task_file(tmp, labels=LABELS, metrics=CLASSIFICATION))
    settings = EvalSettings(task=task, out_dir=tmp / "out", model="m", backend="replay", data=data,
                            progress=False)
    res = run_eval(settings, ReplayPipeline(write_jsonl(tmp / "replay.jsonl", lines)))
    return rows, truth, res


def _oracle_arrays(rows, truth):
    y_true = [r["label"] for r in rows]
    y_pred, ranked = [], []
    for r in rows:
        if r["id"] not in truth:
            y_pred.append("<failed>")
            ranked.append(None)
            continue
        items, diagnosis = truth[r["id"]]
        y_pred.append(_class(_cid(diagnosis)))
        ranked.append(sorted(items, key=lambda it: -it[1]))  # stable: ties keep the report's order
    return y_true, y_pred, ranked


def test_classification_metrics_equal_scikit_learn(classification_run):
    rows, truth, res = classification_run
    y_true, y_pred, _ = _oracle_arrays(rows, truth)
    assert len(truth) < N and any(p == "<unmapped>" for p in y_pred) and any(p in OUTSIDE for p in y_pred)
    m = res.metrics
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")  # "y_pred contains classes not in y_true": the point of the test
        assert m["accuracy"].value == pytest.approx(accuracy_score(y_true, y_pred), abs=1e-12)
        assert m["balanced_accuracy"].value == pytest.approx(balanced_accuracy_score(y_true, y_pred), abs=1e-12)
        assert m["macro_f1"].value == pytest.approx(f1_score(y_true, y_pred, average="macro", zero_division=0),
                                                    abs=1e-12)
        p, r, f, s = precision_recall_fscore_support(y_true, y_pred, labels=LABELS, zero_division=0)
    assert m["accuracy"].n == m["macro_f1"].n == N and m["accuracy"].n_excluded == 0  # failures count, wrong
    for i, label in enumerate(LABELS):
        pc = res.per_class[label]
        assert (pc.precision, pc.recall, pc.f1, pc.support) == pytest.approx((p[i], r[i], f[i], s[i]), abs=1e-12)
    collapsed = [p if p in LABELS or p in ("<unmapped>", "<failed>") else "other" for p in y_pred]
    cm = confusion_matrix(y_true, collapsed, labels=[*LABELS, "other", "<unmapped>", "<failed>"])
    assert res.confusion == cm[: len(LABELS)].tolist()
    assert res.confusion_columns == [*LABELS, "other", "unmapped", "failed"]
    assert "sklearn.metrics.f1_score(average='macro'" in res.metric_definitions["macro_f1"]


def test_top3_equals_top_k_accuracy_score(classification_run):
    rows, truth, res = classification_run
    y_true, _, ranked = _oracle_arrays(rows, truth)
    pads = ["~pad0", "~pad1", "~pad2"]  # score above every class the differential does not name
    sequences = []
    for i, items in enumerate(ranked):
        seq: list[str] = []
        for j, (cond, _p) in enumerate(items or []):
            cls = _class(_cid(cond))
            cls = f"<unmapped #{i}.{j}>" if cls == "<unmapped>" else cls  # each unmapped item holds its own place
            if cls not in seq:
                seq.append(cls)
        sequences.append(seq)
    universe = sorted({*LABELS, *pads, *(c for seq in sequences for c in seq)})
    col = {c: i for i, c in enumerate(universe)}
    scores = np.zeros((len(rows), len(universe)))
    for i, seq in enumerate(sequences):
        scores[i, [col[p] for p in pads]] = 0.5
        for rank, cls in enumerate(seq):
            scores[i, col[cls]] = 100 - rank
    expected = top_k_accuracy_score([col[t] for t in y_true], scores, k=3, labels=list(range(len(universe))))
    assert res.metrics["top3_accuracy"].value == pytest.approx(expected, abs=1e-12)
    assert np.mean([r.top3_correct for r in res.records]) == pytest.approx(expected)


def _at_risk(cid: str | None) -> bool:
    return cid is not None and (ONTO.get(cid).malignant or ONTO.get(cid).premalignant)


def test_auroc_and_ece_equal_scikit_learn_and_count_failures(classification_run):
    rows, truth, res = classification_run
    y_true, _, ranked = _oracle_arrays(rows, truth)
    ok = [i for i, items in enumerate(ranked) if items is not None]
    score = [min(1.0, sum(p for c, p in ranked[i] if _at_risk(_cid(c)))) for i in ok]
    positive = [_at_risk(y_true[i]) for i in ok]
    auroc = res.metrics["auroc_malignant"]
    assert auroc.value == pytest.approx(roc_auc_score(positive, score), abs=1e-12)
    assert auroc.n == len(ok) and auroc.n_excluded == N - len(ok)
    conf = np.array([ranked[i][0][1] for i in ok])
    correct = np.array([_class(_cid(ranked[i][0][0])) == y_true[i] for i in ok], dtype=float)
    prob_true, prob_pred = calibration_curve(correct, conf, n_bins=10, strategy="uniform")
    counts = np.bincount(np.searchsorted(np.linspace(0, 1, 11)[1:-1], conf), minlength=10)
    expected = float(np.sum(counts[counts > 0] / len(ok) * np.abs(prob_true - prob_pred)))
    ece = res.metrics["ece"]
    assert ece.value == pytest.approx(expected, abs=1e-12)
    assert ece.n == len(ok) and ece.n_excluded == N - len(ok)
    assert [b.n for b in res.calibration] == counts.tolist()


def test_group_metrics_equal_scikit_learn_on_the_group(classification_run):
    rows, truth, res = classification_run
    y_true, y_pred, _ = _oracle_arrays(rows, truth)
    for group in ("I", "II", "III"):
        idx = [i for i, r in enumerate(rows) if r["fitzpatrick"] == group]
        t, p = [y_true[i] for i in idx], [y_pred[i] for i in idx]
        g = next(g for g in res.groups if g.scale == "fitzpatrick" and g.group == group)
        assert g.n == len(idx) and g.metrics["accuracy"].n == len(idx)
        assert g.metrics["accuracy"].value == pytest.approx(accuracy_score(t, p), abs=1e-12)
        assert g.metrics["macro_f1"].value == pytest.approx(f1_score(t, p, average="macro", zero_division=0),
                                                            abs=1e-12)


# ---------------------------------------------------------------- text metrics

WORDS = ["Red", "itchy", "rash", "on", "the", "arm", "a", "see", "doctor", "soon", "it's", "well-defined",
         "plaque", "(2-3", "mm)", "eczema,", "psoriasis.", "Dermatitis!", "an", "lesion", "café", "naïve", "3.5",
         "cream;", "\"steroid\"", "&", "UV-light", "x_y"]


def _sentence(rng: np.random.Generator) -> str:
    return " ".join(rng.choice(WORDS, size=int(rng.integers(0, 14))))


@pytest.fixture(scope="module")
def text_run(tmp_path_factory):
    tmp = tmp_path_factory.mktemp("oracle_text")
    rng = np.random.default_rng(11)
    rows = [{"id": f"q{i:02d}", "question": "What is it?",
             "references": [_sentence(rng) or "rash" for _ in range(int(rng.integers(1, 4)))]} for i in range(60)]
    answers = {}
    lines = []
    for r in rows:
        if rng.random() < 0.1:
            lines.append({"sample_id": r["id"], "error": "timed out"})
            continue
        # some answers copy a reference with changes, so higher-order n-grams match too
        answers[r["id"]] = r["references"][0] + " " + _sentence(rng) if rng.random() < 0.5 else _sentence(rng)
        lines.append({"sample_id": r["id"], "answer": answers[r["id"]]})
    task = load_task(task_file(tmp, type="open_vqa", prompt="{question}", skin_tone={"scales": []},
                               metrics=["token_f1", "rouge_l", "bleu_1", "bleu_2", "bleu_3", "bleu_4"]))
    settings = EvalSettings(task=task, out_dir=tmp / "out", model="m", backend="replay",
                            data=manifest(tmp / "data", rows), progress=False)
    res = run_eval(settings, ReplayPipeline(write_jsonl(tmp / "replay.jsonl", lines)))
    return rows, answers, res


def test_bleu_equals_sacrebleu(text_run):
    rows, answers, res = text_run
    hyps = [answers.get(r["id"], "") for r in rows]  # a failed sample is an empty hypothesis
    width = max(len(r["references"]) for r in rows)
    streams = [[r["references"][j] if j < len(r["references"]) else None for r in rows] for j in range(width)]
    for order in (1, 2, 3, 4):
        bleu = BLEU(lowercase=True, tokenize="13a", smooth_method="exp", effective_order=True,
                    max_ngram_order=order)
        expected = bleu.corpus_score(hyps, streams).score / 100
        assert res.metrics[f"bleu_{order}"].value == pytest.approx(expected, abs=1e-9), order
    assert res.metrics["bleu_4"].n == len(rows)


def test_rouge_l_equals_rouge_score_and_token_f1_equals_squad(text_run):
    rows, answers, res = text_run
    scorer = rouge_scorer.RougeScorer(["rougeL"])
    rouge = [scorer.score_multi(r["references"], answers.get(r["id"], ""))["rougeL"].fmeasure for r in rows]
    squad = [max(compute_f1(ref, answers.get(r["id"], "")) for ref in r["references"]) for r in rows]
    assert res.metrics["rouge_l"].value == pytest.approx(float(np.mean(rouge)), abs=1e-12)
    assert res.metrics["token_f1"].value == pytest.approx(float(np.mean(squad)), abs=1e-12)
    by_id = {rec.id: rec for rec in res.records}
    for r, expected in zip(rows, squad, strict=True):
        assert by_id[r["id"]].scores["token_f1"] == pytest.approx(expected, abs=1e-12)


def test_token_f1_uses_squad_normalisation():
    # hyphens and apostrophes are deleted, not split on: "well-defined" is one token, as in SQuAD
    from eval.metrics.text import token_f1

    for pred, ref in [("well-defined plaque", "well defined plaque"), ("It's a rash.", "its rash"),
                      ("", ""), ("", "rash"), ("The the", "a an")]:
        assert token_f1(pred, [ref]) == pytest.approx(compute_f1(ref, pred)), (pred, ref)


def test_delta_bleu_equals_the_published_formula_worked_by_hand():
    """Galley et al. (2015) as the MEDIQA-M3G scorer computes it, two hypotheses worked by hand:

    h1 "red itchy rash on arm", r1 "red rash on the arm" (w 1.0), r2 "itchy rash" (w 0.6):
      unigrams red 1.0 + itchy 0.6 + rash 1.0 + on 1.0 + arm 1.0 = 4.6 of 1.0 x 5; bigrams "itchy rash" 0.6 +
      "rash on" 1.0 = 1.6 of 4; trigrams 0 of 3; 4-grams 0 of 2; |h| = 5, closest reference 5.
    h2 "see a doctor", r "see a doctor soon" (w 0.8): 2.4 of 2.4, 1.6 of 1.6, 0.8 of 0.8, 0 of 0; |h| 3, ref 4.
    Corpus: p = 7.0/7.4, 3.2/5.6, 0.8/3.8 and, no 4-gram matching, exp smoothing 1/(2 x 2); BP = exp(1 - 9/8).
    """
    s1 = bleu_stats("red itchy rash on arm", ["red rash on the arm", "itchy rash"], [1.0, 0.6])
    s2 = bleu_stats("see a doctor", ["see a doctor soon"], [0.8])
    assert s1.correct == pytest.approx([4.6, 1.6, 0, 0]) and s1.total == pytest.approx([5, 4, 3, 2])
    assert s2.correct == pytest.approx([2.4, 1.6, 0.8, 0]) and s2.total == pytest.approx([2.4, 1.6, 0.8, 0])
    total = sum_stats([s1, s2])
    assert (total.sys_len, total.ref_len) == (8, 9)
    expected = math.exp(1 - 9 / 8) * ((7.0 / 7.4) * (3.2 / 5.6) * (0.8 / 3.8) * (1 / 4)) ** 0.25
    assert corpus_bleu(total, 4) == pytest.approx(expected, abs=1e-12)
    # weights all 1: the same statistics as ordinary multi-reference BLEU, which sacreBLEU computes
    plain = sum_stats([bleu_stats("red itchy rash on arm", ["red rash on the arm", "itchy rash"]),
                       bleu_stats("see a doctor", ["see a doctor soon"])])
    ref = BLEU(lowercase=True, tokenize="13a", smooth_method="exp", effective_order=True).corpus_score(
        ["red itchy rash on arm", "see a doctor"], [["red rash on the arm", "see a doctor soon"], ["itchy rash", None]])
    assert corpus_bleu(plain, 4) == pytest.approx(ref.score / 100, abs=1e-12)


