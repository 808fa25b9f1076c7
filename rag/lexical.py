"""The lexical (BM25) half of hybrid search: written with each store generation, memory-mapped when searched.

Why it is persisted: an index built at query time meant that the first search of every process read every chunk
back from Chroma and tokenised it (about 20 s at 100k chunks). The index is instead written by the same write that
creates a generation (``kb build``, ``kb add``) and goes live with the same atomic manifest switch; a reader maps a
few ``.npy`` files and touches only the postings of its query's terms.

Who does what: bm25s computes the index at write time (Lucene BM25: idf, term-frequency saturation and length
normalisation baked into one sparse term x chunk score matrix). Searching it is a sum of that matrix's columns, a
few lines of numpy here, because importing bm25s also imports numba and scipy (about a second of CPU on every cold
start) for nothing a query needs. The file layout is ours (``FORMAT``), so a bm25s upgrade cannot change what a
stored index means; tests check the scores against bm25s itself and against a plain Okapi BM25.

Files of an index folder::

    lexical.json     format, BM25 parameters, chunk count, and the row range of each filter key
    vocab.json       term -> column of the score matrix
    data.npy indices.npy indptr.npy      the score matrix, compressed sparse columns (one column per term)
    ids.npy          chunk ids as UTF-8, fixed width, sorted: row r is ids[r], an id's row is a binary search
    filter_rows.npy  the rows of each condition id and category (``conditions`` / ``categories`` metadata)
"""

from __future__ import annotations

import json
import os
import re
import shutil
import uuid
from collections.abc import Iterable, Mapping, Sequence
from pathlib import Path
from typing import Any

import numpy as np

FORMAT = 1
K1 = 1.2
B = 0.75
FILES = ("lexical.json", "vocab.json", "data.npy", "indices.npy", "indptr.npy", "ids.npy", "filter_rows.npy")

_STOPWORDS = frozenset([
    "a", "an", "and", "are", "as", "at", "be", "but", "by", "for", "from", "has", "have", "he", "her", "his", "i",
    "in", "is", "it", "its", "my", "of", "on", "or", "she", "so", "that", "the", "their", "them", "they", "this",
    "to", "was", "were", "what", "when", "which", "who", "will", "with", "you", "your", "me", "we", "our", "do",
    "does", "did", "can", "could", "should", "would", "there", "been", "into", "than", "then", "also", "not", "no",
])


def tokenize(text: str) -> list[str]:
    """Lower-case word tokens without stopwords, with a light plural strip ('plaques' -> 'plaque')."""
    tokens = []
    for word in re.findall(r"[a-z0-9]+", text.lower()):
        if word in _STOPWORDS:
            continue
        if len(word) > 4 and word.endswith("s") and not word.endswith(("ss", "us", "is")):
            word = word[:-1]
        tokens.append(word)
    return tokens


def _filter_keys(metadata: Mapping[str, Any]) -> list[str]:
    return ([f"condition:{c}" for c in metadata.get("conditions") or []]
            + [f"category:{c}" for c in metadata.get("categories") or []])


class LexicalWriter:
    """Collects the chunks of a generation while they are written, then writes its index in one go."""

    def __init__(self) -> None:
        self._ids: list[bytes] = []
        self._tokens: list[list[str]] = []
        self._filters: list[list[str]] = []

    def __len__(self) -> int:
        return len(self._ids)

    def add(self, ids: Sequence[str], texts: Sequence[str], metadatas: Sequence[Mapping[str, Any]]) -> None:
        for cid, text, meta in zip(ids, texts, metadatas, strict=True):
            self._ids.append(cid.encode("utf-8"))
            self._tokens.append(tokenize(text))
            self._filters.append(_filter_keys(meta or {}))

    def write(self, folder: Path) -> None:
        """Write the index into ``folder`` (which must not exist yet): into a sibling, then one rename."""
        import bm25s

        order = sorted(range(len(self._ids)), key=self._ids.__getitem__)
        ids = [self._ids[i] for i in order]
        if len(set(ids)) != len(ids):
            raise ValueError("chunk ids must be unique")
        bm25 = bm25s.BM25(k1=K1, b=B, method="lucene")
        bm25.index([self._tokens[i] for i in order], create_empty_token=False, show_progress=False)
        rows_of: dict[str, list[int]] = {}
        for row, i in enumerate(order):
            for key in self._filters[i]:
                rows_of.setdefault(key, []).append(row)
        ranges, start = {}, 0
        for key in sorted(rows_of):
            ranges[key] = [start, start + len(rows_of[key])]
            start += len(rows_of[key])
        tmp = folder.with_name(f".{folder.name}.{uuid.uuid4().hex[:6]}.tmp")
        tmp.mkdir(parents=True)
        try:
            width = max((len(i) for i in ids), default=1)
            np.save(tmp / "ids.npy", np.array(ids, dtype=f"S{width}"))
            np.save(tmp / "data.npy", np.asarray(bm25.scores["data"], dtype=np.float32))
            np.save(tmp / "indices.npy", np.asarray(bm25.scores["indices"], dtype=np.int32))
            np.save(tmp / "indptr.npy", np.asarray(bm25.scores["indptr"], dtype=np.int64))
            np.save(tmp / "filter_rows.npy",
                    np.array([r for key in sorted(rows_of) for r in rows_of[key]], dtype=np.int32))
            (tmp / "vocab.json").write_text(json.dumps(bm25.vocab_dict), encoding="utf-8")
            meta = {"format": FORMAT, "method": "lucene", "k1": K1, "b": B, "chunks": len(ids),
                    "bm25s": bm25s.__version__, "filters": ranges}
            (tmp / "lexical.json").write_text(json.dumps(meta), encoding="utf-8")
            os.replace(tmp, folder)
        except BaseException:
            shutil.rmtree(tmp, ignore_errors=True)
            raise


def write_index(folder: Path, records: Iterable[tuple[str, str, Mapping[str, Any]]]) -> None:
    """The index of ``(id, text, metadata)`` records (an existing generation that has none yet)."""
    writer = LexicalWriter()
    for cid, text, meta in records:
        writer.add([cid], [text], [meta])
    writer.write(folder)


def _load(path: Path) -> np.ndarray:
    try:
        return np.load(path, mmap_mode="r")
    except ValueError:  # numpy cannot map an empty array
        return np.load(path)


class LexicalIndex:
    """A persisted index, memory-mapped: opening it reads two small JSON files; a query reads its terms' postings."""

    def __init__(self, folder: Path):
        meta = json.loads((folder / "lexical.json").read_text(encoding="utf-8"))
        if meta.get("format") != FORMAT:
            raise ValueError(f"lexical index format {meta.get('format')} (this dermassist reads {FORMAT})")
        self.folder = folder
        self.size = int(meta["chunks"])
        self._filters: dict[str, list[int]] = meta["filters"]
        self._vocab: dict[str, int] = json.loads((folder / "vocab.json").read_text(encoding="utf-8"))
        self._data, self._indices, self._indptr = (_load(folder / f"{n}.npy") for n in ("data", "indices", "indptr"))
        self._ids = _load(folder / "ids.npy")
        self._filter_rows = _load(folder / "filter_rows.npy")

    def __len__(self) -> int:
        return self.size

    def scores(self, query: str) -> np.ndarray:
        """BM25 score of every chunk (row order); each distinct query term counts once."""
        columns = sorted({self._vocab[t] for t in tokenize(query) if t in self._vocab})
        if not columns:
            return np.zeros(self.size, dtype=np.float32)
        spans = [(int(self._indptr[c]), int(self._indptr[c + 1])) for c in columns]
        rows = np.concatenate([self._indices[a:b] for a, b in spans])
        weights = np.concatenate([self._data[a:b] for a, b in spans])
        return np.bincount(rows, weights=weights, minlength=self.size).astype(np.float32)

    def allowed(self, condition: str | None, category: str | None) -> np.ndarray | None:
        """Mask of the rows tagged with the condition id and the category (None: no filter)."""
        mask = None
        for key in (f"condition:{condition}" if condition else None, f"category:{category}" if category else None):
            if key is None:
                continue
            start, end = self._filters.get(key, (0, 0))
            rows = np.zeros(self.size, dtype=bool)
            rows[self._filter_rows[start:end]] = True
            mask = rows if mask is None else mask & rows
        return mask

    def top(self, scores: np.ndarray, n: int) -> np.ndarray:
        """Rows of the ``n`` best positive scores, best first (ties: lower row first), without sorting them all."""
        positive = int(np.count_nonzero(scores > 0))
        n = min(n, positive)
        if n <= 0:
            return np.zeros(0, dtype=np.int64)
        picked = np.argpartition(-scores, n - 1)[:n] if n < len(scores) else np.arange(len(scores))
        return picked[np.lexsort((picked, -scores[picked]))]

    def ids(self, rows: np.ndarray) -> list[str]:
        return [bytes(self._ids[r]).decode("utf-8") for r in rows]

    def rows(self, ids: Sequence[str]) -> np.ndarray:
        """Row of each chunk id (-1 for an id the index does not hold), by binary search over the sorted ids."""
        out = np.full(len(ids), -1, dtype=np.int64)
        if not self.size or not ids:
            return out
        width = self._ids.dtype.itemsize
        raw = [i.encode("utf-8") for i in ids]
        keys = np.array([r if len(r) <= width else b"" for r in raw], dtype=self._ids.dtype)
        found = np.minimum(np.searchsorted(self._ids, keys), self.size - 1)
        hit = (np.asarray(self._ids[found]) == keys) & np.array([0 < len(r) <= width for r in raw])
        out[hit] = found[hit]
        return out


def open_index(folder: Path) -> LexicalIndex | None:
    """The index in ``folder``; None when there is none (a generation written by an older dermassist) or it is
    of another format."""
    if not all((folder / name).is_file() for name in FILES):
        return None
    try:
        return LexicalIndex(folder)
    except (OSError, ValueError, KeyError):
        return None
