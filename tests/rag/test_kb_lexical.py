"""The persisted lexical index: same scores as a plain Okapi BM25 and as bm25s, top-k selection, filters, the first
search of a process reads only what it needs, and a store written before lexical indexes gets one once."""

from __future__ import annotations

import math
import shutil
from collections import Counter, defaultdict

import numpy as np
import pytest

from rag.evaluate import load_queries
from rag.lexical import K1, B, LexicalIndex, tokenize
from rag.retriever import KnowledgeBaseRetriever
from support.kb import built_store_dir, copy_store, open_store

N = 20  # the retriever's candidate pool for k <= 5


class OkapiBM25:
    """The in-memory index the retriever used before (kept here as the oracle): Okapi BM25 with Lucene's idf."""

    def __init__(self, ids: list[str], texts: list[str]):
        self.ids = ids
        self.lengths = np.zeros(len(texts), dtype=np.float32)
        postings: dict[str, list[tuple[int, int]]] = defaultdict(list)
        for i, text in enumerate(texts):
            counts = Counter(tokenize(text))
            self.lengths[i] = sum(counts.values())
            for term, tf in counts.items():
                postings[term].append((i, tf))
        self.avg = float(self.lengths.mean())
        n = len(texts)
        self.index = {t: (np.array([d for d, _ in rows]), np.array([tf for _, tf in rows], dtype=np.float32),
                          math.log(1 + (n - len(rows) + 0.5) / (len(rows) + 0.5))) for t, rows in postings.items()}

    def scores(self, query: str) -> np.ndarray:
        total = np.zeros(len(self.ids), dtype=np.float32)
        norm = K1 * (1 - B + B * self.lengths / self.avg)
        for term in set(tokenize(query)):
            if term in self.index:
                docs, tf, idf = self.index[term]
                total[docs] += idf * tf * (K1 + 1) / (tf + norm[docs])
        return total


@pytest.fixture(scope="module")
def store():
    return open_store(built_store_dir())


@pytest.fixture(scope="module")
def oracle(store) -> OkapiBM25:
    records = list(store.records())
    return OkapiBM25([r["id"] for r in records], [r["document"] for r in records])


def _normalised(scores: np.ndarray) -> np.ndarray:
    best = float(scores.max())
    return scores / best if best > 0 else scores


def test_scores_and_top_n_equal_the_in_memory_bm25_on_the_query_set(store, oracle):
    index = store.lexical()
    assert len(index) == store.count() == len(oracle.ids)
    rows = index.rows(oracle.ids)
    assert (rows >= 0).all() and len(set(rows.tolist())) == len(rows)
    queries = [q.query for q in load_queries()]
    assert len(queries) >= 100
    for query in queries:
        new, old = index.scores(query), oracle.scores(query)[np.argsort(rows)]  # oracle in the index's row order
        # Lucene's BM25 drops Okapi's constant (k1 + 1) factor: the same ranking and the same normalised scores
        np.testing.assert_allclose(_normalised(new), _normalised(old), rtol=1e-5, atol=1e-6, err_msg=query)
        top = index.top(new, N)
        expected = np.argsort(-old, kind="stable")[:N]
        expected = expected[old[expected] > 0]
        assert len(top) == len(expected), query
        np.testing.assert_allclose(_normalised(new)[top], _normalised(old)[expected], rtol=1e-5)
        boundary = _normalised(old)[expected[-1]] if len(expected) else 0
        clear = _normalised(old)[expected] > boundary + 1e-5  # ties at the cut-off may go either way
        assert set(index.ids(top[clear])) == set(index.ids(expected[clear])), query


def test_scores_equal_bm25s_on_the_same_tokens(store):
    import bm25s

    records = sorted(store.records(), key=lambda r: r["id"].encode())  # the index's row order
    reference = bm25s.BM25(k1=K1, b=B, method="lucene")
    reference.index([tokenize(r["document"]) for r in records], show_progress=False)
    index = store.lexical()
    for query in ["itchy silvery plaques on elbows and knees", "umbilicated papules in a child", "burrows finger webs"]:
        tokens = sorted(set(tokenize(query)))
        np.testing.assert_allclose(index.scores(query), reference.get_scores(tokens), rtol=1e-6)
    assert not index.scores("zzzz qqqq").any()  # unknown words score nothing


def test_top_selects_best_positive_rows_in_order_without_a_full_sort(tmp_path):
    index = LexicalIndex.__new__(LexicalIndex)  # top() needs no files
    scores = np.array([0.0, 3.0, 1.0, 3.0, 0.5, 0.0, 2.0], dtype=np.float32)
    assert index.top(scores, 3).tolist() == [1, 3, 6]  # a tie: the lower row first
    assert index.top(scores, 10).tolist() == [1, 3, 6, 2, 4]  # zero scores are no match
    assert index.top(np.zeros(4, dtype=np.float32), 2).tolist() == []


def test_filters_select_the_tagged_rows(store):
    index = store.lexical()
    records = {r["id"]: r["metadata"] for r in store.records()}
    mask = index.allowed("melanoma", None)
    tagged = {cid for cid, m in records.items() if "melanoma" in (m.get("conditions") or [])}
    assert set(index.ids(np.flatnonzero(mask))) == tagged and tagged
    both = index.allowed("melanoma", "malignant_neoplasm")
    assert set(index.ids(np.flatnonzero(both))) == {
        cid for cid in tagged if "malignant_neoplasm" in (records[cid].get("categories") or [])}
    assert index.allowed(None, None) is None and not index.allowed("not-a-condition", None).any()
    assert index.rows(["psoriasis#red-flags", "no-such#chunk", "x" * 300]).tolist()[1:] == [-1, -1]


class CountingCollection:
    """The real Chroma collection, with every ``get`` (and the records it returned) counted."""

    def __init__(self, inner):
        self.inner, self.gets, self.records_read = inner, 0, 0

    def get(self, *args, **kwargs):
        got = self.inner.get(*args, **kwargs)
        self.gets += 1
        self.records_read += len(got["ids"])
        return got

    def __getattr__(self, name):
        return getattr(self.inner, name)


def test_first_hybrid_search_of_a_process_reads_only_the_missing_candidates():
    store = open_store(built_store_dir())  # what a fresh process has: nothing loaded yet
    counting = CountingCollection(store.collection)
    store.collection = counting
    passages = KnowledgeBaseRetriever(store).search("itchy silvery plaques on elbows and knees", 5)
    assert passages[0].id.startswith("psoriasis#")
    assert counting.gets <= 1 and counting.records_read <= N  # at most the keyword hits the dense top 20 lacked
    assert counting.records_read < store.count() / 10


def test_a_store_from_before_lexical_indexes_is_indexed_once(tmp_path, capsys):
    path = copy_store(tmp_path / "kb")
    generation = open_store(path).manifest.generation
    shutil.rmtree(path / generation / "lexical")  # as an older dermassist wrote it
    first = KnowledgeBaseRetriever(open_store(path)).search("honey-coloured crusts around the nose", 3)
    assert "indexing the knowledge base" in capsys.readouterr().err
    assert (path / generation / "lexical" / "lexical.json").is_file()
    again = KnowledgeBaseRetriever(open_store(path)).search("honey-coloured crusts around the nose", 3)
    assert "indexing" not in capsys.readouterr().err
    assert [p.id for p in again] == [p.id for p in first] and first[0].id.startswith("impetigo#")


def test_add_writes_the_new_chunks_into_the_index(tmp_path):
    from rag.loaders import load_documents

    path = copy_store(tmp_path / "kb")
    note = tmp_path / "quokka_clinic.md"
    note.write_text("## Quokka dermatitis\nOur quokka-keeper dermatitis pathway: photograph, patch test, refer.\n")
    store = open_store(path)
    store.add(load_documents([note]))
    index = store.lexical()
    assert len(index) == store.count() and index.ids(index.top(index.scores("quokka keeper"), 1)) == [
        "quokka_clinic#quokka-dermatitis"]
