"""The metric specs registered in ``eval.metrics.METRICS``: one spec per metric, each with its definition and the
reference implementation it equals (``tests/eval/test_eval_oracles.py`` holds them to it)."""

from __future__ import annotations

import numpy as np

from eval.metrics import calibration as cal
from eval.metrics import classification as clf
from eval.metrics.columns import Columns
from eval.metrics.spec import LABEL_TASKS, Computed, MetricSpec
from eval.metrics.text import BleuStats, corpus_bleu

ALL = frozenset({"classification", "report", "closed_vqa", "open_vqa"})
OPEN = frozenset({"open_vqa"})
CLOSED = frozenset({"closed_vqa"})


def _mean(column: str, population: str | None = None):
    """Mean of a per-sample column over the samples that have a value; ``population`` counts the samples the metric
    is about, so those without a value (failed) are reported as excluded."""
    def compute(c: Columns, idx: np.ndarray) -> Computed:
        a = c.col(column)[idx]
        used = ~np.isnan(a)
        n = int(used.sum())
        excluded = int((~np.isnan(c.col(population)[idx])).sum()) - n if population else 0
        return Computed(float(a[used].mean()) if n else None, n, max(excluded, 0))
    return compute


def _confusion(fn):
    """A metric of the confusion matrix over the samples whose label is in the label set (failures included)."""
    def compute(c: Columns, idx: np.ndarray) -> Computed:
        i = idx[c.y_true[idx] >= 0]
        if not i.size:
            return Computed(None, 0)
        return Computed(fn(clf.confusion(c.y_true[i], c.y_pred[i], len(c.classes))), int(i.size))
    return compute


def _ece(c: Columns, idx: np.ndarray) -> Computed:
    conf, ok = c.col("confidence")[idx], c.col("calibration_correct")[idx]
    has = ~np.isnan(conf) & ~np.isnan(ok)
    n = int(has.sum())
    population = int((~np.isnan(c.col("labelled")[idx])).sum())
    return Computed(cal.ece(conf[has], ok[has]) if n else None, n, population - n)


def _auroc(c: Columns, idx: np.ndarray) -> Computed:
    score, label = c.col("malignancy_score")[idx], c.col("label_malignant")[idx]
    known = ~np.isnan(label)
    has = known & ~np.isnan(score)
    n = int(has.sum())
    value = clf.auroc(score[has], label[has] == 1) if n else None
    return Computed(value, n, int(known.sum()) - n)


def _bleu(order: int, delta: bool = False):
    def compute(c: Columns, idx: np.ndarray) -> Computed:
        stats = c.delta_bleu if delta else c.bleu
        if stats is None or not idx.size:
            return Computed(None, 0)
        return Computed(corpus_bleu(BleuStats.from_list(stats[idx].sum(0)), order), int(idx.size))
    return compute


ACCURACY = MetricSpec(
    "accuracy", "mean", True, frozenset(), LABEL_TASKS | CLOSED,
    "share of samples with ground truth answered right; failed samples and predictions outside the label set count "
    "wrong (= sklearn.metrics.accuracy_score)", _mean("correct"), per_group=True,
    headline_for=LABEL_TASKS | CLOSED)
BALANCED_ACCURACY = MetricSpec(
    "balanced_accuracy", "confusion", True, frozenset({"label"}), LABEL_TASKS,
    "mean recall over the label classes present in the truth (= sklearn.metrics.balanced_accuracy_score)",
    _confusion(clf.balanced_accuracy), per_group=True, headline_for=LABEL_TASKS)
MACRO_F1 = MetricSpec(
    "macro_f1", "confusion", True, frozenset({"label"}), LABEL_TASKS,
    "scikit-learn's default macro-F1: mean F1 over every class in the truth or the predictions, each condition "
    "predicted outside the label set, 'unmapped' and 'failed' being classes of their own with F1 0 "
    "(= sklearn.metrics.f1_score(average='macro', zero_division=0))",
    _confusion(clf.macro_f1), per_group=True, headline_for=LABEL_TASKS)
TOP3_ACCURACY = MetricSpec(
    "top3_accuracy", "top_k", True, frozenset({"label", "report"}), LABEL_TASKS,
    "label among the first three distinct classes of the differential ranked by likelihood; failed samples miss "
    "(= sklearn.metrics.top_k_accuracy_score(k=3) with the ranks as scores)", _mean("top3"), per_group=True,
    headline_for=LABEL_TASKS)
AUROC_MALIGNANT = MetricSpec(
    "auroc_malignant", "roc_auc", True, frozenset({"label", "malignancy"}), LABEL_TASKS,
    "ROC AUC of the summed differential likelihood of malignant or premalignant conditions against a malignant "
    "(dataset flag, else ontology) or premalignant (ontology) label; failed samples have no score and are "
    "counted as excluded (= sklearn.metrics.roc_auc_score)", _auroc)
ECE = MetricSpec(
    "ece", "binned", False, frozenset({"label", "report"}), LABEL_TASKS,
    "expected calibration error of the top differential likelihood, 10 equal-width bins (lo, hi]; failed samples "
    "have no confidence and are counted as excluded (bins as sklearn.calibration.calibration_curve, uniform)", _ece)
SCHEMA_VALIDITY = MetricSpec(
    "schema_validity", "mean", True, frozenset({"report"}), LABEL_TASKS,
    "share of samples whose output validated as a Report (invalid_model_output and max_tokens_too_small are "
    "invalid; other failures are excluded)", _mean("schema_valid", "all"), headline_for=frozenset({"report"}))
CITATION_VALIDITY = MetricSpec(
    "citation_validity", "mean", True, frozenset({"report"}), LABEL_TASKS,
    "share of reports whose cited ids all resolve and were all retrieved", _mean("citation_valid", "all"))
ABSTENTION_RATE = MetricSpec(
    "abstention_rate", "mean", False, frozenset({"report"}), LABEL_TASKS,
    "share of reports whose final diagnosis does not commit (uncertain / unknown / … or unmapped below 0.2)",
    _mean("abstained", "all"))
TRIAGE_AGREEMENT = MetricSpec(
    "triage_agreement", "mean", True, frozenset({"report", "malignancy"}), LABEL_TASKS,
    "among malignant or premalignant labels, the share of reports triaged urgent or emergency",
    _mean("urgent_at_risk", "at_risk"))
UNPARSED_RATE = MetricSpec(
    "unparsed_rate", "mean", False, frozenset({"answer"}), CLOSED,
    "share of answers from which no option could be read unambiguously (scored wrong in accuracy)",
    _mean("unparsed", "all"))
TOKEN_F1 = MetricSpec(
    "token_f1", "mean", True, frozenset({"references"}), OPEN,
    "SQuAD token F1 after SQuAD's answer normalisation, max over references (= the SQuAD v2 script's compute_f1)",
    _mean("token_f1"), per_group=True, headline_for=OPEN)
ROUGE_L = MetricSpec(
    "rouge_l", "mean", True, frozenset({"references"}), OPEN,
    "ROUGE-L F-measure, max over references (= rouge_score.rouge_scorer.RougeScorer(['rougeL']).score_multi)",
    _mean("rouge_l"), per_group=True, headline_for=OPEN)
BERTSCORE = MetricSpec(
    "bertscore", "mean", True, frozenset({"references", "bertscore"}), OPEN,
    "BERTScore F1 with a local encoder (greedy cosine matching, no idf, no rescaling), max over references",
    _mean("bertscore"))


def _bleu_spec(order: int) -> MetricSpec:
    return MetricSpec(
        f"bleu_{order}", "corpus_bleu", True, frozenset({"references"}), OPEN,
        f"corpus BLEU-{order} (= sacrebleu BLEU(lowercase=True, tokenize='13a', smooth_method='exp', "
        f"effective_order=True, max_ngram_order={order}).corpus_score)", _bleu(order),
        headline_for=OPEN if order == 4 else frozenset())


BLEU_1, BLEU_2, BLEU_3, BLEU_4 = (_bleu_spec(n) for n in (1, 2, 3, 4))
DELTA_BLEU = MetricSpec(
    "delta_bleu", "corpus_bleu", True, frozenset({"references", "delta_weights"}), OPEN,
    "deltaBLEU (Galley et al., 2015) with the MEDIQA-M3G 2024 reference weights, as in its official scorer",
    _bleu(4, delta=True), headline_for=OPEN)
JUDGE_ACCURACY = MetricSpec(
    "judge_accuracy", "mean", True, frozenset({"judge"}), ALL,
    "share of samples an LLM judge graded correct (unsure is not correct; failed samples are wrong)",
    _mean("judge_correct"), per_group=True, headline_for=ALL)
JUDGE_UNSURE_RATE = MetricSpec(
    "judge_unsure_rate", "mean", False, frozenset({"judge"}), ALL,
    "share of the judge's verdicts that were unsure", _mean("judge_unsure"))
