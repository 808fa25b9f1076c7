"""`dermassist kb ...` — build, extend, search and inspect the guideline knowledge base."""

from __future__ import annotations

import time
from pathlib import Path
from typing import Annotated

import typer

from assistant.app.options import user_errors

app = typer.Typer(help="Guideline knowledge base: build, add, search, stats.", no_args_is_help=True)

StoreOpt = Annotated[
    Path | None, typer.Option("--store", help="Store folder (default: $DERMASSIST_HOME/kb).", show_default=False)
]
UrlOpt = Annotated[
    str | None,
    typer.Option("--chroma-url", help="Use a Chroma server instead of a folder, e.g. http://127.0.0.1:8001."),
]

DenseOpt = Annotated[bool, typer.Option("--dense", help="Dense retrieval only (no BM25 fusion), for comparison.")]
ConfigOpt = Annotated[
    Path | None, typer.Option("--config", help="YAML run config; its retrieval section names the store, Chroma "
                                               "server and embedding model (flags override it).")
]


def _retrieval(config: Path | None, store: Path | None, chroma_url: str | None, embedding_model: str | None = None):
    """The knowledge-base settings: the run config's ``retrieval:`` section with the flags on top."""
    from assistant.app.config import load_app_config

    given = {key: value for key, value in (("store", str(store) if store else None), ("chroma_url", chroma_url),
                                           ("embedding_model", embedding_model)) if value}
    return load_app_config(config, {"retrieval": given}).retrieval


@app.command()
@user_errors
def build(
    docs: Annotated[
        list[Path] | None, typer.Option("--docs", help="Extra documents (file or folder); repeatable.")
    ] = None,
    embedding_model: Annotated[
        str | None,
        typer.Option("--embedding-model", help="sentence-transformers name or folder (default: all-MiniLM-L6-v2)."),
    ] = None,
    chroma_url: UrlOpt = None,
    store: StoreOpt = None,
    config: ConfigOpt = None,
) -> None:
    """(Re)build the knowledge base from the packaged guidelines plus --docs; the old one stays live until done."""
    from rag.loaders import load_documents
    from rag.store import build_store

    settings = _retrieval(config, store, chroma_url, embedding_model)
    user_docs = load_documents(docs) if docs else []
    started = time.perf_counter()
    kb = build_store(settings.store, chroma_url=settings.chroma_url, embedder=settings.embedding_model,
                     user_docs=user_docs)
    typer.echo(
        f"built {kb.manifest.chunk_count} chunks from {kb.manifest.doc_count} documents in "
        f"{time.perf_counter() - started:.1f} s at {kb.backend.location} (version {kb.version})"
    )


@app.command()
@user_errors
def add(
    paths: Annotated[list[Path], typer.Argument(help="Files or folders (.md .txt .html .pdf).")],
    store: StoreOpt = None,
    chroma_url: UrlOpt = None,
    config: ConfigOpt = None,
) -> None:
    """Add your own documents (all or nothing; re-adding a file replaces its earlier version)."""
    from rag.loaders import load_documents
    from rag.store import open_or_build

    settings = _retrieval(config, store, chroma_url)
    docs = load_documents(paths)  # every file validated before the store is touched
    kb = open_or_build(settings.store, chroma_url=settings.chroma_url, embedder=settings.embedding_model)
    before = kb.manifest.chunk_count
    kb.add(docs)
    typer.echo(
        f"added {len(docs)} document(s): {', '.join(d.doc_id for d in docs)}; "
        f"chunks {before} -> {kb.manifest.chunk_count} (version {kb.version})"
    )


@app.command()
@user_errors
def search(
    query: Annotated[str, typer.Argument(help="What to look for, in plain words.")],
    k: Annotated[int, typer.Option("-k", help="Number of passages.")] = 5,
    condition: Annotated[str | None, typer.Option("--condition", help="Only this condition id.")] = None,
    category: Annotated[str | None, typer.Option("--category", help="Only this category, e.g. inflammatory.")] = None,
    reranker: Annotated[str | None, typer.Option("--reranker", help="Cross-encoder name or folder.")] = None,
    dense: DenseOpt = False,
    store: StoreOpt = None,
    chroma_url: UrlOpt = None,
    config: ConfigOpt = None,
) -> None:
    """Search the knowledge base: rank, score, chunk id, title and the start of each passage."""
    from rag.retriever import build_default_retriever, check_search

    check_search(query, k, condition, category)  # bad input fails before the store and the encoder load
    settings = _retrieval(config, store, chroma_url)
    retriever = build_default_retriever(settings.store, chroma_url=settings.chroma_url,
                                        embedding_model=settings.embedding_model,
                                        reranker=reranker or settings.reranker, hybrid=not dense)
    passages = retriever.search(query, k, condition=condition, category=category)
    if not passages:
        typer.echo("no passages found")
    for rank, p in enumerate(passages, start=1):
        snippet = " ".join(p.text.split())
        snippet = snippet if len(snippet) <= 200 else snippet[:199] + "…"
        typer.echo(f"{rank}. {p.score:.3f}  {p.id}  {p.title}\n   {snippet}")


@app.command()
@user_errors
def stats(store: StoreOpt = None, chroma_url: UrlOpt = None, config: ConfigOpt = None) -> None:
    """Show the manifest: embedding model, corpus version, chunks, documents."""
    from rag.store import get_backend, no_store_error

    settings = _retrieval(config, store, chroma_url)
    backend = get_backend(settings.store, settings.chroma_url)
    m = backend.read_manifest()
    if m is None:
        raise no_store_error(backend)
    rows = [
        ("location", backend.location),
        ("version", m.version),
        ("embedding model", f"{m.embedding_model} ({m.dimension} dimensions)"),
        ("corpus version", m.corpus_version),
        ("query encoder", _encoder_line(m.query_encoder)),
        ("chunks", str(m.chunk_count)),
        ("documents", f"{m.doc_count} ({len(m.user_documents)} added by you)"),
        ("your documents", ", ".join(m.user_documents) or "-"),
        ("built", m.built_at),
        ("updated", m.updated_at),
    ]
    for name, value in rows:
        typer.echo(f"{name + ':':17}{value}")


def _encoder_line(check) -> str:
    if check is None:
        return "sentence-transformers (built before ONNX exports; rebuild for the fast path)"
    if not check.passed:
        return f"sentence-transformers (the ONNX export failed its check: {check.error or 'vectors differ'})"
    return f"ONNX ({check.key}), checked on {check.texts_checked} texts: max difference {check.max_abs_diff:.1e}"


@app.command("eval")
@user_errors
def eval_(
    queries: Annotated[
        Path | None, typer.Option("--queries", help="Folder or .jsonl file (default: the repo's query set).")
    ] = None,
    k: Annotated[int, typer.Option("-k", help="Cut-off for recall@k and MRR@k.")] = 5,
    misses: Annotated[bool, typer.Option("--misses", help="Also list the queries that missed.")] = False,
    dense: DenseOpt = False,
    store: StoreOpt = None,
    chroma_url: UrlOpt = None,
    config: ConfigOpt = None,
) -> None:
    """Recall@k and MRR@k of the knowledge base over the retrieval query set."""
    from rag.evaluate import evaluate, format_result, load_queries
    from rag.retriever import build_default_retriever

    settings = _retrieval(config, store, chroma_url)
    query_set = load_queries(queries)
    retriever = build_default_retriever(settings.store, chroma_url=settings.chroma_url,
                                        embedding_model=settings.embedding_model, hybrid=not dense)
    result = evaluate(retriever.search, query_set, k=k)
    typer.echo(format_result(result))
    if misses:
        for miss in result.misses:
            typer.echo(f"  miss: {miss['query']!r} wanted {miss['relevant']} got {miss['got']}")

