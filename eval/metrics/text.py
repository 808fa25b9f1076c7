"""Open-VQA text metrics: token F1, ROUGE-L, BLEU-1..4 and deltaBLEU (weighted multi-reference BLEU).

Scores are fractions in [0, 1] (the MEDIQA-M3G leaderboard prints deltaBLEU x 100). Each follows a reference
implementation, which ``tests/eval/test_eval_oracles.py`` compares against:

* token F1: the SQuAD evaluation script — answers normalised by lower-casing, deleting punctuation, removing the
  articles a/an/the and splitting on whitespace; F1 of the token multisets; 1.0 when both sides are empty, 0.0
  when only one is; max over references.
* ROUGE-L: ``rouge_score``'s F-measure with its default tokenizer (lower-case, runs of ``[a-z0-9]``), no
  stemming; max over references.
* BLEU: sacreBLEU 2.x ``BLEU(lowercase=True, tokenize="13a", smooth_method="exp", effective_order=True)``
  corpus score (which the MEDIQA-M3G 2024 scorer calls): clipped counts against the maximum count in any
  reference, brevity penalty with the closest reference length (ties: the shorter), no score when nothing matches.

deltaBLEU (Galley et al., 2015) as implemented in the MEDIQA-M3G scorer: for each hypothesis h with references
r_j of weight w_j,

    correct_n += sum over n-grams g of h with min(#g(h), max_j #g(r_j)) > 0 of  w(g) * min(#g(h), max_j #g(r_j))
    total_n   += sum over n-grams g of h of  max_j(w_j) * #g(h)

where w(g) is the largest weight among the references that contain g; the reference length is the one closest
to |h| (ties: the shorter). p_n = correct_n / total_n and BLEU = BP * exp(mean_n log p_n). With all weights 1
this is ordinary multi-reference BLEU. Deviation: the official scorer forgets to lower-case the references
(``lines = [x.lower() ...]`` is never used); we lower-case both sides.
"""

from __future__ import annotations

import math
import re
import string
from collections import Counter
from dataclasses import dataclass, field

NGRAM_ORDER = 4
_ARTICLES = re.compile(r"\b(a|an|the)\b", re.UNICODE)
_PUNCTUATION = str.maketrans("", "", string.punctuation)
_ROUGE_TOKEN = re.compile(r"[a-z0-9]+")


def squad_tokens(text: str) -> list[str]:
    """SQuAD's ``normalize_answer`` then whitespace split: lower, punctuation deleted, articles removed."""
    return _ARTICLES.sub(" ", text.lower().translate(_PUNCTUATION)).split()


def token_f1(prediction: str, references: list[str]) -> float:
    """SQuAD token F1 (its answer normalisation), max over references."""
    pred = squad_tokens(prediction)
    best = 0.0
    for ref in references:
        gold = squad_tokens(ref)
        if not pred or not gold:
            best = max(best, float(pred == gold))
            continue
        common = sum((Counter(pred) & Counter(gold)).values())
        if common == 0:
            continue
        p, r = common / len(pred), common / len(gold)
        best = max(best, 2 * p * r / (p + r))
    return best


def rouge_tokens(text: str) -> list[str]:
    """``rouge_score``'s default tokenizer: lower-case, then runs of [a-z0-9] (everything else separates)."""
    return _ROUGE_TOKEN.findall(text.lower())


def _lcs(a: list[str], b: list[str]) -> int:
    if not a or not b:
        return 0
    prev = [0] * (len(b) + 1)
    for x in a:
        cur = [0]
        for j, y in enumerate(b):
            cur.append(prev[j] + 1 if x == y else max(prev[j + 1], cur[j]))
        prev = cur
    return prev[-1]


def rouge_l(prediction: str, references: list[str]) -> float:
    """ROUGE-L F-measure (longest common subsequence of ``rouge_tokens``), max over references."""
    pred = rouge_tokens(prediction)
    best = 0.0
    for ref in references:
        gold = rouge_tokens(ref)
        lcs = _lcs(pred, gold)
        if lcs:
            p, r = lcs / len(pred), lcs / len(gold)
            best = max(best, 2 * p * r / (p + r))
    return best


def tokenize_13a(line: str) -> str:
    """sacreBLEU's 13a (mteval-v13a) tokenizer."""
    norm = line.replace("<skipped>", "").replace("-\n", "").replace("\n", " ")
    if "&" in norm:
        norm = norm.replace("&quot;", '"').replace("&amp;", "&").replace("&lt;", "<").replace("&gt;", ">")
    norm = f" {norm} "
    norm = re.sub(r"([\{-\~\[-\` -\&\(-\+\:-\@\/])", r" \1 ", norm)
    norm = re.sub(r"([^0-9])([\.,])", r"\1 \2 ", norm)
    norm = re.sub(r"([\.,])([^0-9])", r" \1 \2", norm)
    norm = re.sub(r"([0-9])(-)", r"\1 \2 ", norm)
    return re.sub(r"\s+", " ", norm).strip()


def _ngrams(tokens: list[str]) -> Counter:
    grams: Counter = Counter()
    for n in range(1, NGRAM_ORDER + 1):
        for i in range(len(tokens) - n + 1):
            grams[tuple(tokens[i:i + n])] += 1
    return grams


@dataclass
class BleuStats:
    """Sufficient statistics of one hypothesis (they add up over a corpus)."""

    correct: list[float] = field(default_factory=lambda: [0.0] * NGRAM_ORDER)
    total: list[float] = field(default_factory=lambda: [0.0] * NGRAM_ORDER)
    sys_len: int = 0
    ref_len: int = 0

    def __add__(self, other: BleuStats) -> BleuStats:
        return BleuStats([a + b for a, b in zip(self.correct, other.correct, strict=False)],
                         [a + b for a, b in zip(self.total, other.total, strict=False)],
                         self.sys_len + other.sys_len, self.ref_len + other.ref_len)

    def to_list(self) -> list[float]:
        return [*self.correct, *self.total, self.sys_len, self.ref_len]

    @classmethod
    def from_list(cls, v: list[float]) -> BleuStats:
        return cls(list(v[0:4]), list(v[4:8]), int(v[8]), int(v[9]))


def bleu_stats(hypothesis: str, references: list[str], weights: list[float] | None = None) -> BleuStats:
    """Per-hypothesis (delta)BLEU statistics; ``weights`` None = plain BLEU (every weight 1)."""
    if not references:
        raise ValueError("BLEU needs at least one reference")
    w = [1.0] * len(references) if weights is None else list(weights)
    if len(w) != len(references):
        raise ValueError("one weight per reference")
    if max(w) <= 0:
        raise ValueError("deltaBLEU needs at least one reference with a positive weight")
    hyp = tokenize_13a(hypothesis.lower().rstrip()).split()
    ref_counts: Counter = Counter()
    gram_w: dict[tuple, float] = {}
    closest_diff = closest_len = None
    for ref, rw in zip(references, w, strict=False):
        toks = tokenize_13a(ref.lower().rstrip()).split()
        diff = abs(len(hyp) - len(toks))
        if closest_diff is None or diff < closest_diff or (diff == closest_diff and len(toks) < closest_len):
            closest_diff, closest_len = diff, len(toks)
        for g, c in _ngrams(toks).items():
            ref_counts[g] = max(ref_counts[g], c)
            gram_w[g] = max(gram_w.get(g, rw), rw)
    stats = BleuStats(sys_len=len(hyp), ref_len=closest_len or 0)
    max_w = max(w)
    for g, c in _ngrams(hyp).items():
        n = len(g) - 1
        match = min(c, ref_counts.get(g, 0))
        if match > 0:
            stats.correct[n] += gram_w[g] * match
        stats.total[n] += max_w * c
    stats.correct = [max(c, 0.0) for c in stats.correct]
    return stats


def corpus_bleu(stats: BleuStats, max_order: int = NGRAM_ORDER) -> float:
    """BLEU-``max_order`` from summed statistics (sacreBLEU ``exp`` smoothing, effective order); 0 when no n-gram
    up to ``max_order`` matches (sacreBLEU 2.x's early stop)."""
    if not any(stats.correct[:max_order]):
        return 0.0
    precisions = [0.0] * max_order
    smooth = 1.0
    effective = max_order
    for n in range(1, max_order + 1):
        if stats.total[n - 1] == 0:
            break
        effective = n
        if stats.correct[n - 1] == 0:
            smooth *= 2
            precisions[n - 1] = 1.0 / (smooth * stats.total[n - 1])
        else:
            precisions[n - 1] = stats.correct[n - 1] / stats.total[n - 1]
    if stats.sys_len == 0:
        return 0.0
    bp = 1.0 if stats.sys_len >= stats.ref_len else math.exp(1 - stats.ref_len / stats.sys_len)
    logs = [math.log(p) if p > 0 else -9999999999 for p in precisions[:effective]]
    return bp * math.exp(sum(logs) / effective)


def sum_stats(items: list[BleuStats]) -> BleuStats:
    total = BleuStats()
    for s in items:
        total = total + s
    return total

