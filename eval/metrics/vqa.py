"""Strict answer extraction for closed VQA (yes/no and multiple choice). No random fallback, no first-substring
guess: an answer that cannot be read unambiguously is ``None`` ("unparsed") and scored wrong.

Rules, in order (the first that yields an answer wins; "ambiguous" means the rule found two different answers
and extraction stops with None):

1. An explicit marker — ``answer: X``, ``answer is X``, ``final answer: X`` (the last marker counts).
   X is read with rules 2-4 applied to the first line after the marker (for yes/no, a leading whole word
   ``yes``/``no`` suffices there: ``The answer is yes because ...``).
2. The whole response (punctuation, quotes, brackets and ``**`` stripped) is one option: a letter (``B``,
   ``(B)``, ``B.``), an option text (case-insensitive), or ``yes``/``no``.
3. The response starts with an option letter followed by ``)`` ``.`` or ``:`` (``B) Melanoma``), or with
   ``yes``/``no`` followed by punctuation or the end (``Yes, ...``; but ``No doubt ...`` is not an answer).
4. Multiple choice only: exactly one option text occurs as a whole phrase, not negated (``not``, ``no``,
   ``isn't``, ``unlikely``, ``rule out``, ``without`` within the three preceding words); an option contained in a
   longer matched option (``melanoma`` inside ``melanoma in situ``) does not count separately.
"""

from __future__ import annotations

import re
import string

LETTERS = string.ascii_uppercase
YES_NO = ("yes", "no")
_MARKER = re.compile(r"(?:final\s+answer|correct\s+answer|answer)\s*(?:is|:|=|-)\s*", re.IGNORECASE)
_NEGATIONS = {"not", "no", "isn't", "isnt", "unlikely", "without", "never", "excluding", "exclude", "nor"}
_STRIP = " \t\n\r.,;:!?\"'`*()[]{}<>"


def _norm(text: str) -> str:
    return re.sub(r"\s+", " ", text.strip().strip(_STRIP).lower()).strip()


def _whole(text: str, choices: list[str]) -> str | None:
    t = _norm(text)
    if not choices:
        return t if t in YES_NO else None
    if len(t) == 1 and t.upper() in LETTERS[: len(choices)]:
        return choices[LETTERS.index(t.upper())]
    m = re.fullmatch(r"(?:option\s+)?([a-z])", t)
    if m and m.group(1).upper() in LETTERS[: len(choices)]:
        return choices[LETTERS.index(m.group(1).upper())]
    for c in choices:
        if _norm(c) == t:
            return c
    m = re.fullmatch(r"([a-z])\s*[).:]\s*(.+)", t)
    if m and m.group(1).upper() in LETTERS[: len(choices)] and _norm(m.group(2)) == _norm(
            choices[LETTERS.index(m.group(1).upper())]):
        return choices[LETTERS.index(m.group(1).upper())]
    return None


def _leading(text: str, choices: list[str]) -> str | None:
    t = text.strip().lstrip("*\"'` ")
    if not choices:
        m = re.match(r"(yes|no)\s*(?:[.,;:!)\-]|$)", t, re.IGNORECASE)
        return m.group(1).lower() if m else None
    m = re.match(r"\(?([A-Za-z])\s*[).:]", t)
    if m and m.group(1).upper() in LETTERS[: len(choices)]:
        # "A. " could be a sentence starting with the article "A." only when followed by lowercase text; accept
        # letters only when the option list is long enough to contain them (checked above).
        return choices[LETTERS.index(m.group(1).upper())]
    return None


def _negated(prefix: str) -> bool:
    """A negation cue among the last three words of the clause before a mention."""
    clause = re.split(r"[.;,:!?\n]", prefix)[-1]
    before = clause.split()[-3:]
    return bool(_NEGATIONS & set(before)) or bool(re.search(r"\brul(e|ed|ing)\s+out\s*$", clause))


def _mentions(text: str, choices: list[str]) -> str | None:
    raw = " " + text.lower() + " "
    low = re.sub(r"[^\w\s'-]", " ", raw)  # same length as raw: indices line up
    spans: dict[int, list[tuple[int, int]]] = {}
    for i, c in enumerate(choices):
        phrase = re.sub(r"[^\w\s'-]", " ", c.lower()).strip()
        if not phrase:
            continue
        for m in re.finditer(r"(?<![\w'-])" + re.escape(phrase) + r"(?![\w'-])", low):
            if _negated(raw[: m.start()]):
                continue
            spans.setdefault(i, []).append((m.start(), m.end()))
    # drop options whose every occurrence lies inside a longer matched option's occurrence
    keep = []
    for i, occ in spans.items():
        inside = all(any(s2 <= s and e <= e2 and (e2 - s2) > (e - s) for j, o2 in spans.items() if j != i
                         for s2, e2 in o2) for s, e in occ)
        if not inside:
            keep.append(i)
    return choices[keep[0]] if len(keep) == 1 else None


def extract_answer(response: str | None, choices: list[str] | None = None) -> str | None:
    """The chosen option text (or ``yes``/``no`` when ``choices`` is empty), or None when not unambiguous."""
    if not response or not response.strip():
        return None
    opts = list(choices or [])
    markers = list(_MARKER.finditer(response))
    if markers:
        tail = response[markers[-1].end():]
        first_line = tail.strip().splitlines()[0] if tail.strip() else ""
        for rule in (_whole, _leading):
            if (got := rule(first_line, opts)) is not None:
                return got
        if not opts:
            m = re.match(r"\W*(yes|no)\b", first_line, re.IGNORECASE)
            return m.group(1).lower() if m else None
        return _mentions(first_line, opts)
    for rule in (_whole, _leading):
        if (got := rule(response, opts)) is not None:
            return got
    return _mentions(response, opts) if opts else None


def is_correct(extracted: str | None, gold: str, choices: list[str] | None = None) -> bool:
    """Compare an extracted answer with the gold answer (an option text, a letter, or yes/no)."""
    if extracted is None:
        return False
    opts = list(choices or [])
    g = gold.strip()
    if opts and len(g) == 1 and g.upper() in LETTERS[: len(opts)]:
        g = opts[LETTERS.index(g.upper())]
    return _norm(extracted) == _norm(g)


def format_choices(choices: list[str]) -> str:
    return "\n".join(f"{LETTERS[i]}. {c}" for i, c in enumerate(choices))
