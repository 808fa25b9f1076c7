"""Retrieval at scale: dense vs hybrid (the default) at 1k / 10k / 100k chunks, steady and first query of a process.

Stores are made of synthetic chunks (the packaged corpus's sentences recombined, 3-6 per chunk, each with a real
document title and section, seeded) and written through the same path as ``dermassist kb build``
(``rag.store.write_chunks``: Chroma generation, lexical index, query-encoder check, atomic manifest switch). They
are kept in ``$DERMASSIST_HOME/bench/`` between runs: writing 100k chunks takes minutes.

A chunk's vector is the normalised mean of its sentences' real embeddings (each distinct corpus sentence embedded
once with the real model): embedding 100k chunks one by one would take about 85 minutes on two cores and measures
nothing about search. Queries are embedded by the store's query encoder, as ``kb search`` does.

* steady: each query of the query set is searched dense and hybrid, the order alternating, in one process;
* first query: a fresh process opens the store and searches once (its imports done before the clock starts;
  the operating system's page cache is warm), dense and hybrid processes alternating.
"""

from __future__ import annotations

import functools
import json
import random
import re
import subprocess
import sys
from pathlib import Path

import numpy as np

from bench.common import REPO, Results, Row, clock, median, percentile

SIZES = (1_000, 10_000, 100_000)
TARGET_SIZE = 100_000
HYBRID_P95_MS = 20.0
FIRST_QUERY_MS = 1000.0

FIRST_QUERY = """
import json, sys, time
from rag.retriever import KnowledgeBaseRetriever
from rag.store import KnowledgeBaseStore
path, hybrid, query = sys.argv[1], sys.argv[2] == "hybrid", sys.argv[3]
t0 = time.perf_counter()
store = KnowledgeBaseStore(path)
t1 = time.perf_counter()
KnowledgeBaseRetriever(store, hybrid=hybrid).search(query, 5)
t2 = time.perf_counter()
print(json.dumps({"open_ms": (t1 - t0) * 1000, "first_ms": (t2 - t1) * 1000}))
"""


@functools.cache
def corpus_sentences() -> tuple[list, list[str]]:
    from rag.corpus import chunk_documents, load_packaged_corpus

    real = chunk_documents(load_packaged_corpus())
    found = [s for c in real for s in re.split(r"(?<=[.!?])\s+", c.text.split("\n\n", 1)[1]) if len(s) > 30]
    return real, sorted(set(found))


def synthetic_chunks(n: int, seed: int = 0) -> list:
    real, sentences = corpus_sentences()
    rng = random.Random(seed)
    chunks = []
    for i in range(n):
        like = rng.choice(real)
        body = " ".join(rng.sample(sentences, rng.randint(3, 6)))
        chunks.append(like.model_copy(update={
            "id": f"synthetic_{i}#{like.id.split('#')[1]}", "doc_id": f"synthetic_{i}",
            "text": f"{like.doc_title} — {like.section}\n\n{body}"}))
    return chunks


class SentenceMeanEmbedder:
    """Chunk vector = normalised mean of its sentences' real embeddings; the model itself is exported for queries
    (and checked on real chunks) exactly as ``kb build`` does."""

    def __init__(self, inner):
        self.inner, self.name, self.dimension = inner, inner.name, inner.dimension
        real, sentences = corpus_sentences()
        self.index = {s: i for i, s in enumerate(sentences)}
        self.vectors = inner.embed(sentences)
        self.real_texts = [c.text for c in real]

    def export_query_encoder(self, sample_texts=()):
        return self.inner.export_query_encoder(self.real_texts)

    def embed(self, texts):
        out = []
        for text in texts:
            rows = [self.index[s] for s in re.split(r"(?<=[.!?])\s+", text.split("\n\n", 1)[-1]) if s in self.index]
            vector = self.vectors[rows].mean(axis=0) if rows else self.inner.embed([text])[0]
            out.append(vector / np.linalg.norm(vector))
        return np.stack(out).astype(np.float32)


@functools.cache
def sentence_embedder() -> SentenceMeanEmbedder:
    from rag.embeddings import get_embedder

    return SentenceMeanEmbedder(get_embedder())


def store_for(n: int) -> Path:
    """A store of ``n`` synthetic chunks, written once and kept (keyed by the corpus version and store format)."""
    from assistant.core.paths import dermassist_home
    from rag.corpus import corpus_version
    from rag.store import MANIFEST_FORMAT, LocalBackend, write_chunks

    folder = dermassist_home() / "bench" / f"kb-{n}-{corpus_version()}-f{MANIFEST_FORMAT}"
    if (folder / "manifest.json").is_file():
        return folder
    print(f"[bench] writing a {n:,}-chunk store to {folder} (kept for later runs)...", file=sys.stderr, flush=True)
    started = clock()
    write_chunks(LocalBackend(folder), synthetic_chunks(n), embedder=sentence_embedder(), corpus="synthetic",
                 doc_count=n)
    print(f"[bench] written in {clock() - started:.0f} s", file=sys.stderr, flush=True)
    return folder


def steady(folder: Path, queries: list[str]) -> dict[str, list[float]]:
    from rag.retriever import KnowledgeBaseRetriever
    from rag.store import KnowledgeBaseStore

    store = KnowledgeBaseStore(folder)
    retrievers = {"dense": KnowledgeBaseRetriever(store, hybrid=False), "hybrid": KnowledgeBaseRetriever(store)}
    for retriever in retrievers.values():
        retriever.search(queries[0], 5)  # open the Chroma segment, map the lexical index
    samples: dict[str, list[float]] = {"dense": [], "hybrid": []}
    for i, query in enumerate(queries):
        for name in ("dense", "hybrid") if i % 2 == 0 else ("hybrid", "dense"):
            started = clock()
            retrievers[name].search(query, 5)
            samples[name].append((clock() - started) * 1000)
    # the parts of a hybrid search, for the "why" of a missed target
    vectors = [store.embedder.embed([q])[0] for q in queries[:20]]
    parts = {"embed": [], "chroma": [], "lexical": []}
    for query, vector in zip(queries[:20], vectors, strict=False):
        started = clock()
        store.embedder.embed([query])
        parts["embed"].append((clock() - started) * 1000)
        started = clock()
        store.query(vector, 20)
        parts["chroma"].append((clock() - started) * 1000)
        started = clock()
        index = store.lexical()
        index.top(index.scores(query), 20)
        parts["lexical"].append((clock() - started) * 1000)
    return {**samples, **parts}


def first_query(folder: Path, query: str, rounds: int) -> dict[str, list[dict]]:
    out: dict[str, list[dict]] = {"dense": [], "hybrid": []}
    for r in range(rounds):
        for mode in ("dense", "hybrid") if r % 2 == 0 else ("hybrid", "dense"):
            proc = subprocess.run([sys.executable, "-c", FIRST_QUERY, str(folder), mode, query], capture_output=True,
                                  text=True, cwd=REPO, timeout=600, check=True)
            out[mode].append(json.loads(proc.stdout.strip().splitlines()[-1]))
    return out


def run(results: Results, sizes: tuple[int, ...] = SIZES, n_queries: int = 100, rounds: int = 3) -> None:
    from rag.evaluate import load_queries

    if TARGET_SIZE not in sizes:
        results.notes.append(f"Retrieval targets (hybrid p95 <= {HYBRID_P95_MS:g} ms and first search <= "
                             f"{FIRST_QUERY_MS / 1000:g} s at {TARGET_SIZE:,} chunks): not measured in this run "
                             f"(sizes {', '.join(f'{n:,}' for n in sizes)}).")

    queries = [q.query for q in load_queries()][:n_queries]
    for n in sizes:
        folder = store_for(n)
        s = steady(folder, queries)
        first = first_query(folder, queries[1], rounds)
        label = f"retrieval {n // 1000}k"
        largest = n == TARGET_SIZE  # the targets are set for 100k chunks
        parts = (f"hybrid parts p50: embed {median(s['embed']):.1f} ms, Chroma top-20 {median(s['chroma']):.1f} ms, "
                 f"BM25 {median(s['lexical']):.1f} ms")
        results.add(Row(label, "search p50, k=5", median(s["hybrid"]), "ms", a=median(s["dense"]),
                        a_label="dense", b_label="hybrid"))
        results.add(Row(label, "search p95, k=5", percentile(s["hybrid"], 95), "ms", a=percentile(s["dense"], 95),
                        a_label="dense", b_label="hybrid", target=HYBRID_P95_MS if largest else None,
                        why=parts if largest else "", note=parts if not largest else ""))
        results.add(Row(label, "first search of a process", median([x["first_ms"] for x in first["hybrid"]]), "ms",
                        a=median([x["first_ms"] for x in first["dense"]]), a_label="dense", b_label="hybrid",
                        target=FIRST_QUERY_MS if largest else None,
                        note=f"opening the store before it: {median([x['open_ms'] for x in first['hybrid']]):.0f} ms"))
