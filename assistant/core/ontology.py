"""Condition ontology: the one place that knows which condition ids exist and what text means which id.

Dataset labels ("nv", "AKIEC", "NEV"), lay terms ("mole", "shingles") and spelling variants ("naevus") all map to
the canonical ids of docs/kb-spec.md here, so the corpus, the vector store, the report validator and the eval
harness agree on names. Mapping is exact after `normalize_key` and never fuzzy: a wrong guess would silently
mislabel evaluation data or a report, so unmappable text is returned as None / listed for a human to add.

Validate the data file with ``python -m assistant.core.ontology [path]`` (also run by tests/test_ontology.py).
"""

from __future__ import annotations

import functools
import re
import sys
import unicodedata
from collections.abc import Iterable
from enum import StrEnum
from pathlib import Path
from typing import Literal

import yaml
from pydantic import BaseModel, ConfigDict, Field, ValidationError

DEFAULT_PATH = Path(__file__).parent / "data" / "conditions.yaml"

Urgency = Literal["routine", "soon", "urgent", "emergency"]


class Category(StrEnum):
    """Coarse grouping used for filtering and reporting; `group` marks dataset umbrella labels (bkl, vasc, akiec)."""

    MALIGNANT_NEOPLASM = "malignant_neoplasm"
    PREMALIGNANT = "premalignant"
    BENIGN_NEOPLASM = "benign_neoplasm"
    VASCULAR = "vascular"
    INFLAMMATORY = "inflammatory"
    INFECTIOUS = "infectious"
    PIGMENTARY = "pigmentary"
    HAIR = "hair"
    ULCER = "ulcer"
    GROUP = "group"


class Condition(BaseModel):
    """One ontology entry. Immutable so the cached default ontology cannot be altered by a caller."""

    model_config = ConfigDict(frozen=True, extra="forbid")

    id: str = Field(pattern=r"^[a-z][a-z0-9]*(_[a-z0-9]+)*$")
    name: str = Field(min_length=1)
    synonyms: tuple[str, ...] = ()
    icd10: str = Field(pattern=r"^[A-Z][0-9][0-9A-Z](\.[0-9A-Z]{1,4})?$")
    category: Category
    malignant: bool
    premalignant: bool = Field(False, description="a precursor of skin cancer (e.g. actinic keratosis); the safety "
                                                  "layer and the eval harness treat it alike")
    default_urgency: Urgency
    parents: tuple[str, ...] = ()


_APOSTROPHES = re.compile(r"['\u2018\u2019\u02bc`\u00b4]")
_NON_ALNUM = re.compile(r"[^0-9a-z]+")
_LIGATURES = str.maketrans({"æ": "ae", "œ": "oe", "ß": "ss", "ø": "o", "ð": "d", "þ": "th", "ł": "l"})


def normalize_key(text: str) -> str:
    """Reduce text to the lookup key used for ids, names and synonyms everywhere.

    Case, accents, punctuation, underscores/hyphens and repeated whitespace carry no meaning in a condition
    label ("Basal-Cell  Carcinoma", "basal_cell_carcinoma", "Henoch–Schönlein"), so they are removed.
    Apostrophes are dropped rather than spaced so "Bowen's" == "Bowens". Spelling variants such as
    naevus/nevus are deliberately NOT folded: that would be a guess, so the data file lists both.
    """
    text = unicodedata.normalize("NFKD", text.casefold().translate(_LIGATURES))
    text = "".join(ch for ch in text if not unicodedata.combining(ch))
    text = _APOSTROPHES.sub("", text)
    return " ".join(_NON_ALNUM.sub(" ", text).split())


class Ontology:
    """Validated, read-only set of conditions with exact text normalisation and parent (umbrella) lookups."""

    def __init__(self, conditions: Iterable[Condition]):
        """Build indexes and validate; raises ValueError naming the offending entry on any inconsistency."""
        self._conditions: tuple[Condition, ...] = tuple(conditions)
        self._by_id: dict[str, Condition] = {}
        for cond in self._conditions:
            if cond.id in self._by_id:
                raise ValueError(f"duplicate condition id {cond.id!r}")
            self._by_id[cond.id] = cond

        self._index: dict[str, str] = {}  # normalize_key(text) -> id
        for cond in self._conditions:
            seen_here: set[str] = set()
            for kind, text in [("id", cond.id), ("name", cond.name)] + [
                ("synonym", s) for s in cond.synonyms
            ]:
                key = normalize_key(text)
                if not key:
                    raise ValueError(f"condition {cond.id!r}: {kind} {text!r} is empty after normalisation")
                owner = self._index.get(key)
                if owner is not None and owner != cond.id:
                    raise ValueError(
                        f"condition {cond.id!r}: {kind} {text!r} (normalised {key!r}) is already used by "
                        f"condition {owner!r}"
                    )
                if kind == "synonym" and key in seen_here:
                    raise ValueError(
                        f"condition {cond.id!r}: synonym {text!r} (normalised {key!r}) duplicates its own id, "
                        "name or another synonym"
                    )
                seen_here.add(key)
                self._index[key] = cond.id

        for cond in self._conditions:
            for parent in cond.parents:
                if parent not in self._by_id:
                    raise ValueError(f"condition {cond.id!r}: unknown parent {parent!r}")
                if parent == cond.id:
                    raise ValueError(f"condition {cond.id!r}: lists itself as a parent")
        self._ancestors: dict[str, frozenset[str]] = {}
        for cond in self._conditions:
            self._ancestors[cond.id] = frozenset(self._walk_ancestors(cond.id, ()))

    def _walk_ancestors(self, cid: str, path: tuple[str, ...]) -> set[str]:
        """Depth-first ancestor walk; `path` detects cycles so a bad file fails loudly instead of recursing."""
        if cid in path:
            cycle = " -> ".join((*path[path.index(cid):], cid))
            raise ValueError(f"condition {cid!r}: parent cycle {cycle}")
        found: set[str] = set()
        for parent in self._by_id[cid].parents:
            found.add(parent)
            found |= self._walk_ancestors(parent, (*path, cid))
        return found

    @classmethod
    def load(cls, path: Path | str | None = None) -> Ontology:
        """Read and validate a conditions YAML file (default: assistant/core/data/conditions.yaml)."""
        path = Path(path) if path is not None else DEFAULT_PATH
        data = yaml.safe_load(path.read_text(encoding="utf-8"))
        entries = data.get("conditions") if isinstance(data, dict) else None
        if not isinstance(entries, list):
            raise ValueError(f"{path}: expected a mapping with a 'conditions' list")
        conditions = []
        for i, entry in enumerate(entries):
            label = entry.get("id", f"#{i}") if isinstance(entry, dict) else f"#{i}"
            try:
                conditions.append(Condition.model_validate(entry))
            except ValidationError as exc:
                raise ValueError(f"{path}: condition {label!r} is invalid: {exc}") from exc
        try:
            return cls(conditions)
        except ValueError as exc:
            raise ValueError(f"{path}: {exc}") from exc

    @property
    def conditions(self) -> tuple[Condition, ...]:
        """All conditions in file order."""
        return self._conditions

    @property
    def ids(self) -> tuple[str, ...]:
        """All condition ids in file order."""
        return tuple(c.id for c in self._conditions)

    def __contains__(self, cid: object) -> bool:
        return cid in self._by_id

    def __len__(self) -> int:
        return len(self._conditions)

    def get(self, cid: str) -> Condition:
        """Condition by canonical id; KeyError (not None) because an unknown id is a programming error."""
        try:
            return self._by_id[cid]
        except KeyError:
            hint = self.normalize(cid)
            extra = f" (did you mean to normalize() it? it maps to {hint!r})" if hint else ""
            raise KeyError(f"unknown condition id {cid!r}{extra}") from None

    def normalize(self, text: str | None) -> str | None:
        """Canonical id for an id, name or synonym, matched exactly after normalize_key; None if unknown or empty."""
        if text is None:
            return None
        key = normalize_key(str(text))
        return self._index.get(key) if key else None

    def normalize_many(self, texts: Iterable[str]) -> tuple[dict[str, str], list[str]]:
        """Map many labels at once: ({text: id} for mapped texts, sorted unique unmapped texts to review)."""
        mapped: dict[str, str] = {}
        unmapped: set[str] = set()
        for text in texts:
            cid = self.normalize(text)
            if cid is None:
                unmapped.add(text)
            else:
                mapped[text] = cid
        return mapped, sorted(unmapped)

    def ancestors(self, cid: str) -> set[str]:
        """All umbrella groups above `cid` (transitively), e.g. seborrheic_keratosis -> {benign_keratosis}."""
        self.get(cid)
        return set(self._ancestors[cid])

    def matches(self, predicted_id: str, label_id: str) -> bool:
        """Whether a prediction counts as correct for a label: same id, or the label is an umbrella above it.

        A dataset label "bkl" cannot tell seborrhoeic keratosis from solar lentigo, so predicting either is right;
        the converse (predicting the umbrella for a specific label) is not, as it is less informative.
        """
        self.get(predicted_id)
        self.get(label_id)
        return predicted_id == label_id or label_id in self._ancestors[predicted_id]

    def name_of(self, cid: str) -> str:
        """Display name of an id; an unknown id in words (for reports about data that names unknown ids)."""
        return self._by_id[cid].name if cid in self._by_id else cid.replace("_", " ")

    def is_malignant(self, cid: str) -> bool:
        """Whether the condition is a malignancy (or an umbrella containing one); drives safety escalation."""
        return self.get(cid).malignant

    def by_category(self, category: Category | str) -> tuple[Condition, ...]:
        """Conditions in one category, file order; ValueError for an unknown category name."""
        cat = Category(category)
        return tuple(c for c in self._conditions if c.category == cat)


@functools.lru_cache(maxsize=1)
def default_ontology() -> Ontology:
    """The packaged ontology, loaded once per process (the object is read-only, so sharing it is safe)."""
    return Ontology.load()


def main(argv: list[str] | None = None) -> int:
    """Validate an ontology file and print a one-line-per-category summary; exit 1 on a validation error."""
    argv = sys.argv[1:] if argv is None else argv
    try:
        onto = Ontology.load(argv[0] if argv else None)
    except ValueError as exc:
        print(f"INVALID: {exc}", file=sys.stderr)
        return 1
    n_syn = sum(len(c.synonyms) for c in onto.conditions)
    print(f"OK: {len(onto)} conditions, {n_syn} synonyms")
    for cat in Category:
        ids = [c.id for c in onto.by_category(cat)]
        print(f"  {cat.value:18s} {len(ids):3d}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
