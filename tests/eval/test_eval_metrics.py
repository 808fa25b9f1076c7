"""Metrics against hand-computed values, including the edge cases: empty group, all wrong, ties, one class."""

from __future__ import annotations

import math

import numpy as np
import pytest

from eval.metrics import calibration as cal
from eval.metrics import classification as clf
from eval.metrics import report as rep
from eval.metrics.bertscore import greedy_f1
from eval.metrics.bootstrap import bootstrap_ci
from eval.metrics.fairness import gap_summary
from eval.metrics.text import bleu_stats, corpus_bleu, rouge_l, sum_stats, token_f1, tokenize_13a

approx = pytest.approx


# ------------------------------------------------------------------ classification


def test_classification_hand_computed():
    # classes 0-2 are labels, 3 is a prediction outside the label set (an extra class, as the harness encodes it)
    t, p = np.array([0, 0, 1, 1, 2]), np.array([0, 1, 1, 3, 2])
    cm = clf.confusion(t, p, 4)
    assert cm.tolist() == [[1, 1, 0, 0], [0, 1, 0, 1], [0, 0, 1, 0], [0, 0, 0, 0]]
    assert clf.accuracy(t, p) == approx(0.6)
    assert clf.balanced_accuracy(cm) == approx((0.5 + 0.5 + 1) / 3)
    pc = clf.per_class(cm)
    assert pc["precision"].tolist() == approx([1.0, 0.5, 1.0, 0.0])
    # scikit-learn's default: the outside class is a class of its own with F1 0
    assert clf.macro_f1(cm) == approx((2 / 3 + 0.5 + 1.0 + 0.0) / 4)


def test_all_wrong_and_unmapped_is_wrong():
    t, p = np.array([0, 1]), np.array([2, 2])
    cm = clf.confusion(t, p, 3)
    assert clf.accuracy(t, p) == 0.0 and clf.balanced_accuracy(cm) == 0.0 and clf.macro_f1(cm) == 0.0


def test_single_class():
    t, p = np.array([0, 0, 0]), np.array([0, 0, 1])
    cm = clf.confusion(t, p, 2)
    assert clf.accuracy(t, p) == approx(2 / 3) and clf.balanced_accuracy(cm) == approx(2 / 3)
    assert clf.macro_f1(cm) == approx((0.8 + 0.0) / 2)  # precision 1, recall 2/3; the failed class scores 0


def test_empty_is_none_not_zero():
    cm = clf.confusion(np.array([], int), np.array([], int), 3)
    assert clf.accuracy([], []) is None and clf.balanced_accuracy(cm) is None and clf.macro_f1(cm) is None


def test_predicted_class_absent_from_truth_counts_in_macro_f1():
    cm = clf.confusion(np.array([0, 0]), np.array([0, 1]), 2)
    assert clf.macro_f1(cm) == approx((2 / 3 + 0) / 2)
    assert clf.balanced_accuracy(cm) == approx(0.5)


def test_auroc_including_ties_and_one_class():
    assert clf.auroc([0.1, 0.4, 0.35, 0.8], [False, False, True, True]) == approx(0.75)
    assert clf.auroc([0.5, 0.5], [True, False]) == approx(0.5)
    assert clf.auroc([0.2, 0.5, 0.5, 0.9], [False, True, False, True]) == approx((1 + 0.5 + 1 + 1) / 4)
    assert clf.auroc([0.2, 0.3], [True, True]) is None


def test_baselines_majority_and_chance():
    b = clf.baselines(np.array([0, 0, 1]), 2)
    assert b["majority"]["accuracy"] == approx(2 / 3) and b["majority"]["balanced_accuracy"] == approx(0.5)
    assert b["majority"]["macro_f1"] == approx(0.4)
    assert b["chance"]["accuracy"] == 0.5 and b["chance"]["macro_f1"] == approx((4 / 7 + 2 / 5) / 2)
    assert clf.baselines(np.array([0, 1]), 2)["majority"]["accuracy"] == 0.5  # tie: first class
    assert clf.baselines(np.array([], int), 2) == {}


# ------------------------------------------------------------------ calibration, bootstrap, fairness


def test_ece_hand_computed_and_bins():
    conf, ok = [0.9, 0.9, 0.6, 0.2], [1, 0, 1, 0]
    assert cal.ece(conf, ok) == approx(0.5 * 0.4 + 0.25 * 0.4 + 0.25 * 0.2)
    bins = cal.reliability_bins([0.0, 0.7, 1.0], [1, 1, 1])
    assert bins[0]["n"] == 1 and bins[6]["n"] == 1 and bins[9]["n"] == 1  # 0.7 in (0.6, 0.7]
    assert cal.ece([], []) is None
    assert cal.ece([1.0, 1.0], [1, 1]) == 0.0


def test_bootstrap_fixed_seed_constant_and_empty():
    data = np.array([0, 1, 1, 0, 1, 1, 1, 0])

    def stat(idx):
        return float(data[idx].mean())

    assert bootstrap_ci(stat, len(data), 200, seed=3) == bootstrap_ci(stat, len(data), 200, seed=3)
    lo, hi = bootstrap_ci(stat, len(data), 500, seed=0)
    assert 0 <= lo < data.mean() < hi <= 1
    assert bootstrap_ci(lambda idx: 1.0, 5, 100) == (1.0, 1.0)
    assert bootstrap_ci(stat, 0, 100) is None
    assert bootstrap_ci(lambda idx: None, 5, 100) is None


def test_gap_summary_with_empty_group_single_group_and_ties():
    g = gap_summary({"I": 0.5, "II": 1.0, "III": None})
    assert (g["worst_group"], g["best_group"], g["groups"]) == ("I", "II", 2)
    assert g["gap"] == approx(0.5) and g["normalized_range"] == approx(0.5 / 0.75)
    one = gap_summary({"I": 0.7, "II": None})
    assert one["worst"] == 0.7 and one["gap"] is None and one["normalized_range"] is None
    assert gap_summary({"I": None})["worst_group"] is None
    tie = gap_summary({"a": 0.5, "b": 0.5})
    assert tie["gap"] == 0 and tie["normalized_range"] == 0
    assert gap_summary({"a": 0.0, "b": 0.0})["normalized_range"] is None  # mean 0: undefined


# ------------------------------------------------------------------ text


def test_token_f1_and_rouge_l():
    assert token_f1("The cat sat", ["a cat sat down"]) == approx(0.8)
    assert token_f1("psoriasis", ["eczema", "Psoriasis."]) == 1.0  # max over references
    assert token_f1("", ["something"]) == 0.0
    assert rouge_l("the cat sat on the mat", ["the cat is on the mat"]) == approx(5 / 6)
    assert rouge_l("", ["x"]) == 0.0


def test_tokenize_13a():
    # as mteval-v13a: apostrophes and hyphens between letters stay, decimals stay, other punctuation splits
    assert tokenize_13a("Hello, world. It's 3.5 mm-wide (2-3)!") == "Hello , world . It's 3.5 mm-wide ( 2 - 3 ) !"


def test_bleu_hand_computed():
    s = bleu_stats("the cat sat on the mat", ["the cat sat on a mat"])
    assert s.correct == [5, 3, 2, 1] and s.total == [6, 5, 4, 3]
    assert corpus_bleu(s, 1) == approx(5 / 6)
    assert corpus_bleu(s, 2) == approx(math.sqrt(5 / 6 * 3 / 5))
    assert corpus_bleu(s, 4) == approx((5 / 6 * 3 / 5 * 1 / 2 * 1 / 3) ** 0.25)
    assert corpus_bleu(bleu_stats("Same words here", ["same words here"]), 4) == approx(1.0)


def test_bleu_brevity_penalty_smoothing_and_empty():
    assert corpus_bleu(bleu_stats("the cat", ["the cat sat on the mat"]), 4) == approx(math.exp(1 - 6 / 2))
    # p2 and p3 have no matches: exp smoothing 1/(2*2) and 1/(4*1)
    assert corpus_bleu(bleu_stats("a b c", ["a x c"]), 4) == approx((2 / 3 * 0.25 * 0.25) ** (1 / 3))
    assert corpus_bleu(bleu_stats("", ["a b"]), 4) == 0.0


def test_delta_bleu_weights_hand_computed():
    s = bleu_stats("a b", ["a b", "a c"], weights=[0.5, 1.0])
    # unigram a: weight max(0.5, 1.0); b: 0.5; bigram "a b": 0.5; totals scaled by max weight 1.0
    assert s.correct[:2] == [1.5, 0.5] and s.total[:2] == [2.0, 1.0]
    assert corpus_bleu(s, 4) == approx(math.sqrt(0.75 * 0.5))
    assert corpus_bleu(bleu_stats("a b", ["a b", "a c"]), 4) == approx(1.0)  # unweighted: a perfect match
    with pytest.raises(ValueError):
        bleu_stats("a", ["a"], weights=[0.0])


def test_corpus_bleu_sums_statistics():
    total = sum_stats([bleu_stats("a b", ["a b"]), bleu_stats("c d", ["c e"])])
    assert total.correct[:2] == [3, 1] and total.total[:2] == [4, 2]


# ------------------------------------------------------------------ report-level, BERTScore core


def test_report_level_definitions():
    good = {"differential": [{"citation_ids": ["psoriasis#red-flags"]}],
            "citations": [{"id": "psoriasis#red-flags"}], "grounding": {"dropped_citation_ids": []},
            "diagnosis": {"condition": "psoriasis", "condition_id": "psoriasis", "confidence": 0.8},
            "triage": {"urgency": "routine"}}
    assert rep.citation_valid(good) and rep.cites_anything(good) and not rep.abstained(good)
    dropped = dict(good, grounding={"dropped_citation_ids": ["made-up#x"]})
    assert not rep.citation_valid(dropped)
    unresolved = dict(good, citations=[])
    assert not rep.citation_valid(unresolved)
    assert rep.abstained(dict(good, diagnosis={"condition": "Uncertain - needs biopsy", "confidence": 0.9}))
    assert rep.abstained(dict(good, diagnosis={"condition": "xq zz", "condition_id": None, "confidence": 0.1}))
    assert not rep.urgent(good) and rep.urgent(dict(good, triage={"urgency": "emergency"}))


def test_bertscore_greedy_matching_hand_computed():
    hyp = np.array([[1.0, 0.0], [0.0, 1.0]])
    ref = np.array([[1.0, 0.0]])
    # precision: mean(max sim) = (1 + 0) / 2; recall: 1 -> F1 = 2 * 0.5 * 1 / 1.5
    assert greedy_f1(hyp, ref) == approx(2 / 3)
    assert greedy_f1(hyp, hyp) == approx(1.0)
    assert greedy_f1(np.zeros((0, 2)), ref) == 0.0
