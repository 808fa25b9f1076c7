""".venv/bin/python bench/kb_bench.py --n 100000   # knowledge-base build time and query latency at scale

Synthetic chunks are made from the packaged guideline corpus by recombining its sentences (3-6 per chunk, with a
real document title and section as prefix, seeded), embedded in batches with the default embedder and written
through the same path as ``dermassist kb build`` (``rag.store.write_chunks``: a fresh generation, then the atomic
manifest switch). Then the query set is searched with the dense and the hybrid (default) retriever, k=5.
Prints a Markdown table. Scale down with ``--n 10000``; ``--store DIR`` keeps the store (default: a temp folder).

``--sentence-vectors`` measures the store and search at scale when embedding every chunk would take hours on a
small CPU: each distinct corpus sentence is embedded once (real model, batches) and a chunk's vector is the
normalised mean of its sentences' vectors. Build time then shows Chroma's writes only; the embedding cost per chunk
comes from a run without the flag.
"""

from __future__ import annotations

import argparse
import functools
import os
import platform
import random
import re
import shutil
import statistics
import sys
import tempfile
import time
from pathlib import Path

import numpy as np

os.environ.setdefault("HF_HUB_OFFLINE", "1")
os.environ.setdefault("ANONYMIZED_TELEMETRY", "False")

from rag.corpus import Chunk, chunk_documents, load_packaged_corpus
from rag.embeddings import get_embedder
from rag.evaluate import load_queries
from rag.retriever import KnowledgeBaseRetriever
from rag.store import LocalBackend, write_chunks


@functools.cache
def corpus_sentences() -> tuple[list[Chunk], list[str]]:
    real = chunk_documents(load_packaged_corpus())
    found = [s for c in real for s in re.split(r"(?<=[.!?])\s+", c.text.split("\n\n", 1)[1]) if len(s) > 30]
    return real, sorted(set(found))


def synthetic_chunks(n: int, seed: int = 0) -> list[Chunk]:
    real, sentences = corpus_sentences()
    rng = random.Random(seed)
    chunks = []
    for i in range(n):
        like = rng.choice(real)
        body = SEPARATOR.join(rng.sample(sentences, rng.randint(3, 6)))
        chunks.append(
            like.model_copy(update={"id": f"synthetic_{i}#{like.id.split('#')[1]}", "doc_id": f"synthetic_{i}",
                                    "text": f"{like.doc_title} — {like.section}\n\n{body}"})
        )
    return chunks


SEPARATOR = " "


class SentenceMeanEmbedder:
    """Chunk vector = normalised mean of its sentences' real embeddings (each distinct sentence embedded once)."""

    def __init__(self, inner):
        self.inner, self.name, self.dimension = inner, inner.name, inner.dimension
        _, sentences = corpus_sentences()
        self.index = {s: i for i, s in enumerate(sentences)}
        self.vectors = inner.embed(sentences)

    def embed(self, texts):
        out = []
        for text in texts:
            body = text.split("\n\n", 1)[-1]
            rows = [self.index[s] for s in re.split(r"(?<=[.!?])\s+", body) if s in self.index]
            vector = self.vectors[rows].mean(axis=0) if rows else self.inner.embed([text])[0]
            out.append(vector / np.linalg.norm(vector))
        return np.stack(out).astype(np.float32)


class TimedEmbedder:
    """The real embedder, with the seconds spent embedding counted (build time = embedding + Chroma writes)."""

    def __init__(self, inner):
        self.inner, self.seconds = inner, 0.0
        self.name, self.dimension = inner.name, inner.dimension

    def embed(self, texts):
        started = time.perf_counter()
        try:
            return self.inner.embed(texts)
        finally:
            self.seconds += time.perf_counter() - started


def percentile(values: list[float], q: float) -> float:
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, round(q * (len(ordered) - 1)))]


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--n", type=int, default=100_000, help="number of synthetic chunks")
    parser.add_argument("--queries", type=int, default=100, help="number of timed queries per mode")
    parser.add_argument("--batch", type=int, default=256, help="embedding / write batch size")
    parser.add_argument("--sentence-vectors", action="store_true",
                        help="chunk vectors from once-embedded sentences (see the module docstring)")
    parser.add_argument("--store", type=Path, default=None, help="store folder to keep (default: temp, removed)")
    args = parser.parse_args(argv)

    folder = args.store or Path(tempfile.mkdtemp(prefix="kb-bench-")) / "kb"
    base = get_embedder()
    if args.sentence_vectors:
        started = time.perf_counter()
        base = SentenceMeanEmbedder(base)
        print(f"embedded {len(base.index)} distinct sentences in {time.perf_counter() - started:.0f} s",
              file=sys.stderr)
    embedder = TimedEmbedder(base)
    chunks = synthetic_chunks(args.n)
    mean_chars = statistics.mean(len(c.text) for c in chunks)
    print(f"{args.n} synthetic chunks, mean {mean_chars:.0f} characters; building in {folder}", file=sys.stderr)
    try:
        started = time.perf_counter()
        store = write_chunks(LocalBackend(folder), chunks, embedder=embedder, corpus="synthetic",
                             doc_count=args.n, batch_size=args.batch)
        build_s = time.perf_counter() - started
        embed_s = embedder.seconds

        queries = [q.query for q in load_queries()][: args.queries]
        vectors = base.inner.embed(queries) if args.sentence_vectors else base.embed(queries)
        chroma_ms = []
        for vector in vectors:  # the store alone: nearest 20 of a precomputed query vector
            started = time.perf_counter()
            store.query(vector, 20)
            chroma_ms.append((time.perf_counter() - started) * 1000)
        rows = []
        for label, hybrid in (("dense", False), ("hybrid (default)", True)):
            retriever = KnowledgeBaseRetriever(store, hybrid=hybrid)
            started = time.perf_counter()
            retriever.search(queries[0], 5)  # warm-up (hybrid: builds the BM25 index)
            warm_s = time.perf_counter() - started
            latencies = []
            for query in queries:
                started = time.perf_counter()
                retriever.search(query, 5)
                latencies.append((time.perf_counter() - started) * 1000)
            rows.append((label, warm_s, percentile(latencies, 0.5), percentile(latencies, 0.95)))
        size_mb = sum(f.stat().st_size for f in folder.rglob("*") if f.is_file()) / 1e6
    finally:
        if args.store is None:
            shutil.rmtree(folder.parent, ignore_errors=True)

    vectors = "sentence-mean vectors" if args.sentence_vectors else "chunk embeddings"
    print(f"\nMachine: {os.cpu_count()} CPU cores, {platform.processor() or platform.machine()}, "
          f"embedder {embedder.name} ({vectors}), chromadb PersistentClient\n")
    print(f"Build: {build_s:.0f} s ({embed_s:.0f} s of it embedding), {args.n / build_s:.0f} chunks/s, "
          f"store {size_mb:.0f} MB. Chroma alone (top 20 for a ready query vector): "
          f"p50 {percentile(chroma_ms, 0.5):.1f} ms, p95 {percentile(chroma_ms, 0.95):.1f} ms.\n")
    print("| chunks | search (k=5, end to end) | first search | p50 | p95 |")
    print("|---:|---|---:|---:|---:|")
    for label, warm_s, p50, p95 in rows:
        print(f"| {args.n:,} | {label} | {warm_s * 1000:.0f} ms | {p50:.1f} ms | {p95:.1f} ms |")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
