"""Tolerant but conservative matching of the condition names a model writes.

The report keeps ``condition_id`` exact (``Ontology.normalize``: never a guess). Safety may over-read, never
under-read, so here a name is matched the generous way: exact; after stripping qualifiers ("Suspected melanoma",
"Seborrheic keratosis, irritated", "Nodular BCC"); by containing an ontology name or synonym ("Acne vulgaris (mild
comedonal)", "Melanoma vs atypical naevus" -> both); with typos corrected in words of five letters or more. A name
with a malignancy word ("melanoma", "Karzinom", "malignant") is flagged even when nothing else matches.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass
from functools import cached_property

from rapidfuzz import process
from rapidfuzz.distance import OSA

from assistant.core.ontology import Ontology, normalize_key
from assistant.pipeline.safety.schema import Language
from assistant.pipeline.safety.text import fold, tokens

_MIN_CONTAINED = 4  # shorter synonyms ("ak", "scc", "ten") count only as the whole (stripped) name
_NEGATORS = frozenset({"non", "not", "no", "sin", "sans", "nicht", "kein", "nao", "pas", "nem"})
_NOT_A_STEM_PREFIX = ("pre", "non", "pseudo", "anti")
_ENDINGS = ("", "a", "e", "o", "s", "as", "es", "os")


@dataclass(frozen=True)
class ConditionMatch:
    text: str
    ids: tuple[str, ...]
    how: str  # exact | qualifiers | containment | none
    malignant_word: str | None


class ConditionMatcher:
    def __init__(self, ontology: Ontology, language: Language, min_fuzzy: int = 5) -> None:
        self.ontology = ontology
        self.language = language
        self.min_fuzzy = min_fuzzy
        self.qualifiers = [tuple(tokens(fold(q))) for q in language.qualifiers.all()]
        self.stems = tuple(normalize_key(s) for s in language.malignant_stems)

    @cached_property
    def _names(self) -> dict[tuple[str, ...], str]:
        names: dict[tuple[str, ...], str] = {}
        for cond in self.ontology.conditions:
            for text in (cond.id, cond.name, *cond.synonyms):
                names.setdefault(tuple(normalize_key(text).split()), cond.id)
        return names

    @cached_property
    def _vocabulary(self) -> list[str]:
        return sorted({w for key in self._names for w in key if len(w) >= self.min_fuzzy})

    def _correct(self, words: list[str]) -> list[str]:
        vocabulary = set(self._vocabulary)
        out = []
        for word in words:
            if len(word) >= self.min_fuzzy and word not in vocabulary:
                limit = 1 if len(word) < 9 else 2
                best = process.extractOne(word, self._vocabulary, scorer=OSA.distance, score_cutoff=limit)
                if best and best[0][0] == word[0]:
                    word = best[0]
            out.append(word)
        return out

    def _strip(self, words: list[str]) -> list[str]:
        out: list[str] = []
        i = 0
        while i < len(words):
            for q in sorted(self.qualifiers, key=len, reverse=True):
                if q and tuple(words[i:i + len(q)]) == q:
                    i += len(q)
                    break
            else:
                out.append(words[i])
                i += 1
        return out

    def _contained(self, words: list[str]) -> tuple[str, ...]:
        found: list[str] = []
        used = [False] * len(words)
        for key in sorted(self._names, key=len, reverse=True):
            if len(" ".join(key)) < _MIN_CONTAINED:
                continue
            for i in range(len(words) - len(key) + 1):
                if tuple(words[i:i + len(key)]) == key and not any(used[i:i + len(key)]):
                    used[i:i + len(key)] = [True] * len(key)
                    if self._names[key] not in found:
                        found.append(self._names[key])
        return tuple(found)

    def malignant_word(self, words: Iterable[str]) -> str | None:
        previous = ""
        for word in words:
            if previous not in _NEGATORS:
                for stem in self.stems:
                    inside = stem in word and not word.startswith(_NOT_A_STEM_PREFIX)
                    # a typo: one edit from the stem with a usual ending ("melanomma", "carsinoma", "lymphona");
                    # "melanocytic" is further than that
                    typo = len(word) >= self.min_fuzzy and word[0] == stem[0] and any(
                        OSA.distance(word, stem + ending) <= 1 for ending in _ENDINGS)
                    if word.startswith(stem) or inside or typo:
                        return word
            previous = word
        return None

    def match(self, text: str) -> ConditionMatch:
        words = normalize_key(text).split()
        malignant = self.malignant_word(words)
        exact = self.ontology.normalize(text)
        if exact:
            return ConditionMatch(text, (exact,), "exact", malignant)
        for candidate in (words, self._correct(words)):
            stripped = self._strip(candidate)
            cid = self.ontology.normalize(" ".join(stripped)) if stripped else None
            if cid:
                return ConditionMatch(text, (cid,), "qualifiers", malignant)
            contained = self._contained(stripped)
            if contained:
                return ConditionMatch(text, contained, "containment", malignant)
        return ConditionMatch(text, (), "none", malignant)
