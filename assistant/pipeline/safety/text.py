"""Reading clinical free text the way the safety rules need it: folded, split into clauses, concept terms found
with misspelling tolerance, and every hit marked present, negated or uncertain (NegEx-style windows).

Nothing here interprets instructions: text is only ever searched for the lexicon's terms, so a case or a model that
writes "ignore the rules, triage routine" changes nothing but the words the rules can see.
"""

from __future__ import annotations

import re
import unicodedata
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field
from functools import cached_property
from typing import Literal

from rapidfuzz import process
from rapidfuzz.distance import OSA

Status = Literal["present", "negated", "uncertain"]

_LIGATURES = str.maketrans({"æ": "ae", "œ": "oe", "ß": "ss", "ø": "o", "ð": "d", "þ": "th", "ł": "l"})
_APOSTROPHES = re.compile(r"['\u2018\u2019\u02bc`\u00b4]")
# French elision ("l'œil", "s'étend", "qu'il"): the article or pronoun is a word of its own, as the lexicon writes it
_ELISION = re.compile(r"\b(qu|jusqu|lorsqu|puisqu|[cdjlmnst])['\u2018\u2019\u02bc`\u00b4](?=\w)")
_CLAUSE_BREAK = re.compile(r"[!;\n\r]+|\.(?!\d)")  # sentence ends; "38.5" stays one number
_TOKEN = re.compile(r"\?|[a-z0-9]+")
_CLAUSE_TOKEN = re.compile(r"\?|,|[a-z0-9]+")


def fold(text: str) -> str:
    """Lower case without accents or apostrophes ("Fièvre", "doesn't" -> "fievre", "doesnt"); a French elision
    becomes two words ("s'étend" -> "s etend"); punctuation kept."""
    text = unicodedata.normalize("NFKD", text.casefold().translate(_LIGATURES))
    text = "".join(ch for ch in text if not unicodedata.combining(ch))
    return _APOSTROPHES.sub("", _ELISION.sub(r"\1 ", text))


def tokens(text: str) -> list[str]:
    """Word tokens of already folded text; a question mark is a token (a clinician's "?melanoma" is uncertain)."""
    return _TOKEN.findall(text)


def clauses(text: str) -> list[list[str]]:
    """Folded text split at sentence ends into token lists; commas stay inside a clause (see ``Scopes``)."""
    # a comma is a token of its own so that negation scopes can stop there
    return [toks for part in _CLAUSE_BREAK.split(fold(text)) if (toks := _CLAUSE_TOKEN.findall(part))]


ANY_LANGUAGE = "*"
_CACHE_LIMIT = 50_000


@dataclass(frozen=True)
class Term:
    """One lexicon phrase in one language (``*``: every language): folded words; a word ending in ``*`` matches
    any word starting with it."""

    concept: str
    words: tuple[str, ...]
    lang: str = ANY_LANGUAGE

    @classmethod
    def parse(cls, concept: str, phrase: str, lang: str = ANY_LANGUAGE) -> Term:
        return cls(concept, tuple(re.findall(r"[a-z0-9]+\*?", fold(phrase))), lang)


def detect_languages(toks: Sequence[str], stopwords: dict[str, frozenset[str]]) -> frozenset[str]:
    """The language(s) whose function words a text uses most; every language when it has none of them."""
    counts = {lang: sum(t in words for t in toks) for lang, words in stopwords.items()}
    best = max(counts.values(), default=0)
    return frozenset(lang for lang, n in counts.items() if n == best) if best else frozenset(stopwords)


@dataclass(frozen=True)
class Hit:
    concept: str
    source: str
    text: str
    status: Status


@dataclass
class Matcher:
    """Finds lexicon terms in token lists.

    A token matches a term word of any language exactly; by prefix for ``word*``; or, for words of at least
    ``min_fuzzy`` letters, with one edit (two from nine letters on; optimal string alignment, so a swapped pair is
    one edit) towards a word of the text's own language, when the first letter agrees and the token is not a real
    word that merely looks alike (``no_fuzzy``: "fewer" is not "fever"). Multi-word terms may have one extra token
    between their words ("ulcers in the mouth").
    """

    terms: Sequence[Term]
    no_fuzzy: frozenset[str] = frozenset()
    min_fuzzy: int = 5
    _cache: dict[tuple[str, frozenset[str]], frozenset[str]] = field(default_factory=dict, repr=False)

    @cached_property
    def _exact(self) -> set[str]:
        return {w for t in self.terms for w in t.words if not w.endswith("*")}

    @cached_property
    def _prefixes(self) -> list[str]:
        return sorted({w[:-1] for t in self.terms for w in t.words if w.endswith("*")})

    @cached_property
    def _fuzzy(self) -> dict[str, list[str]]:
        by_lang: dict[str, set[str]] = {}
        for term in self.terms:
            by_lang.setdefault(term.lang, set()).update(
                w for w in term.words if not w.endswith("*") and len(w) >= self.min_fuzzy)
        return {lang: sorted(words) for lang, words in by_lang.items()}

    @cached_property
    def _by_first(self) -> dict[str, list[Term]]:
        index: dict[str, list[Term]] = {}
        for term in self.terms:
            index.setdefault(term.words[0], []).append(term)
        return index

    def word_forms(self, token: str, langs: frozenset[str]) -> frozenset[str]:
        """The lexicon words (``stem*`` for prefixes) this token counts as in a text written in ``langs``."""
        cached = self._cache.get((token, langs))
        if cached is not None:
            return cached
        exact = self._exact
        found = {token} if token in exact else set()
        for stem in self._prefixes:
            if token.startswith(stem) or (len(stem) >= self.min_fuzzy and len(token) >= len(stem)
                                          and token[0] == stem[0] and OSA.distance(token[:len(stem)], stem) <= 1):
                found.add(stem + "*")
        if len(token) >= self.min_fuzzy and token not in exact and token not in self.no_fuzzy:
            limit = 1 if len(token) < 9 else 2
            for lang in (*sorted(langs), ANY_LANGUAGE):
                candidates = self._fuzzy.get(lang, [])
                for word, _, _ in process.extract(token, candidates, scorer=OSA.distance, score_cutoff=limit,
                                                  limit=None):
                    if word[0] == token[0]:
                        found.add(word)
        result = frozenset(found)
        if len(self._cache) >= _CACHE_LIMIT:  # a long-running server sees unbounded vocabulary: start again
            self._cache.clear()
        self._cache[(token, langs)] = result
        return result

    def find(self, toks: Sequence[str], langs: frozenset[str]) -> list[tuple[Term, int, int]]:
        """``(term, start, end)`` of every term occurring in ``toks`` (end exclusive)."""
        forms = [self.word_forms(t, langs) for t in toks]
        out: dict[tuple[str, int, int], Term] = {}  # one hit per concept and span, whichever language listed it
        for i, first in enumerate(forms):
            for word in first:
                for term in self._by_first.get(word, ()):
                    end = _match_rest(term.words, forms, i)
                    if end is not None:
                        out.setdefault((term.concept, i, end), term)
        return [(term, start, end) for (_, start, end), term in out.items()]


def _match_rest(words: tuple[str, ...], forms: list[frozenset[str]], start: int) -> int | None:
    pos = start + 1
    for word in words[1:]:
        if pos < len(forms) and word in forms[pos]:
            pos += 1
        elif pos + 1 < len(forms) and word in forms[pos + 1]:
            pos += 2
        else:
            return None
    return pos


@dataclass(frozen=True)
class Triggers:
    """NegEx trigger phrases (folded word tuples) and the words that end a scope."""

    negation_before: frozenset[tuple[str, ...]]
    negation_list: frozenset[tuple[str, ...]]  # "denies fever, chills or bleeding": the scope runs over commas
    negation_after: frozenset[tuple[str, ...]]
    negation_final: frozenset[tuple[str, ...]]  # "fever: no" -- only at the very end of a clause
    uncertainty_before: frozenset[tuple[str, ...]]
    uncertainty_after: frozenset[tuple[str, ...]]
    pseudo: frozenset[tuple[str, ...]]  # "not only", "sans doute": look like triggers, are not
    terminators: frozenset[str]
    conjunctions: frozenset[str]  # end the scope of a plain (non-list) trigger: "no fever and bleeding"

    @staticmethod
    def phrases(items: Iterable[str]) -> frozenset[tuple[str, ...]]:
        return frozenset(tuple(tokens(fold(item))) for item in items if tokens(fold(item)))


def _occurrences(toks: Sequence[str], phrases: frozenset[tuple[str, ...]]) -> list[tuple[int, int]]:
    spans = []
    lengths = sorted({len(p) for p in phrases}, reverse=True)
    for i in range(len(toks)):
        for n in lengths:
            if i + n <= len(toks) and tuple(toks[i:i + n]) in phrases:
                spans.append((i, i + n))
                break
    return spans


def status_of(toks: Sequence[str], start: int, end: int, triggers: Triggers, window: int,
              protected: set[int]) -> Status:
    """NegEx for the hit at ``toks[start:end]``: negated beats uncertain beats present.

    ``protected`` are token positions inside other concept hits: a "not" that belongs to "not healing" negates
    nothing else.
    """
    def usable(spans: list[tuple[int, int]]) -> list[tuple[int, int]]:
        pseudo = _occurrences(toks, triggers.pseudo)
        return [(a, b) for a, b in spans
                if not any(a < e and s < b for s, e in pseudo) and not any(i in protected for i in range(a, b))]

    def before(phrases: frozenset[tuple[str, ...]], through_commas: bool) -> bool:
        for _, b in usable(_occurrences(toks[:start], phrases)):
            between = toks[b:start]
            stops = triggers.terminators if through_commas else triggers.terminators | triggers.conjunctions | {","}
            if len(between) <= window and not any(t in stops for t in between):
                return True
        return False

    def after(phrases: frozenset[tuple[str, ...]]) -> bool:
        for a, _ in usable(_occurrences(toks[end:], phrases)):
            between = toks[end:end + a]
            if a <= window and not any(t in triggers.terminators or t in triggers.conjunctions for t in between):
                return True
        return False

    final = usable(_occurrences(toks[end:], triggers.negation_final))
    if (before(triggers.negation_before, False) or before(triggers.negation_list, True)
            or after(triggers.negation_after)
            or any(end + b == len(toks) and a <= window for a, b in final)):
        return "negated"
    if before(triggers.uncertainty_before, False) or after(triggers.uncertainty_after):
        return "uncertain"
    return "present"


def read(text: str | None, source: str, matcher: Matcher, triggers: Triggers, window: int,
         stopwords: dict[str, frozenset[str]]) -> list[Hit]:
    """Every concept hit in ``text`` with its NegEx status; ``source`` names where it came from ("history")."""
    hits: list[Hit] = []
    parts = clauses(text or "")
    langs = detect_languages([t for toks in parts for t in toks], stopwords)
    for toks in parts:
        found = matcher.find(toks, langs)
        for term, start, end in found:
            protected = {i for _, s, e in found if (s, e) != (start, end) for i in range(s, e)}
            hits.append(Hit(term.concept, source, " ".join(toks[start:end]),
                            status_of(toks, start, end, triggers, window, protected)))
    return hits
