"""Knowledge-base store: chunking and stable ids, corpus version, atomic build/add, model mismatch, Chroma server."""

from __future__ import annotations

import os
import re
import shutil
from pathlib import Path

import pytest

from assistant.core.errors import RetrievalError
from rag.corpus import (
    MAX_CHUNK_CHARS,
    chunk_document,
    chunk_documents,
    corpus_version,
    load_packaged_corpus,
    parse_markdown,
)
from rag.embeddings import SentenceTransformerEmbedder
from rag.loaders import load_documents
from rag.retriever import KnowledgeBaseRetriever
from rag.store import KnowledgeBaseStore, build_store
from support.kb import ChromaServer, CrashingEmbedder, built_store_dir, copy_store, open_store, shared_embedder
from support.net import free_port

DOC = """---
title: Example condition
doc_id: example
conditions: [psoriasis]
sources:
  - organisation: National Institute for Health and Care Excellence (NICE)
    title: "Example guidance"
    year: 2017
    url: https://example.org/a
  - organisation: British Association of Dermatologists
    year: 2022
last_reviewed: 2026-11-21
---
# Example condition

## Typical presentation
Example condition is short.

## Red flags
{long}

## Red flags
A second section with the same heading.
"""


def _example(long_text: str = "Fine."):
    return parse_markdown(DOC.format(long=long_text), "example.md", kind="condition", require_front_matter=True)


def test_front_matter_is_parsed_into_a_guideline_doc():
    doc = _example()
    assert (doc.title, doc.doc_id, doc.conditions) == ("Example condition", "example", ["psoriasis"])
    assert doc.sources[0].year == 2017 and str(doc.last_reviewed) == "2026-11-21"
    assert doc.attribution() == "dermassist guideline summary (NICE 2017; British Association of Dermatologists 2022)"
    assert doc.url() == "https://example.org/a"


def test_one_chunk_per_section_with_title_prefix_and_stable_ids():
    chunks = chunk_document(_example())
    assert [c.id for c in chunks] == ["example#typical-presentation", "example#red-flags", "example#red-flags-2"]
    assert chunks[0].text == "Example condition — Typical presentation\n\nExample condition is short."
    assert chunks[0].conditions == ["psoriasis"] and chunks[0].url == "https://example.org/a"
    assert [c.id for c in chunk_document(_example())] == [c.id for c in chunks]  # stable


def test_long_sections_split_on_paragraphs_with_numbered_suffixes():
    paragraphs = [f"Paragraph {i}. " + "Plaques and scale on the elbows. " * 12 for i in range(8)]
    chunks = chunk_document(_example("\n\n".join(paragraphs)))
    *split, duplicate = [c for c in chunks if c.section == "Red flags"]
    assert [c.id for c in split][:3] == ["example#red-flags", "example#red-flags-2", "example#red-flags-3"]
    bodies = [c.text.split("\n\n", 1)[1] for c in split]
    assert all(len(b) <= MAX_CHUNK_CHARS for b in bodies)
    assert "\n\n".join(bodies) == "\n\n".join(p.strip() for p in paragraphs)  # order kept, nothing lost
    assert duplicate.text.endswith("same heading.") and len({c.id for c in chunks}) == len(chunks)


def test_bad_front_matter_is_a_clear_error_naming_the_file():
    with pytest.raises(RetrievalError, match=r"bad\.md: .*doc_id"):
        parse_markdown("---\ndoc_id: Bad Id!\ntitle: x\n---\n## A\ntext", "bad.md", kind="topic",
                       require_front_matter=True)
    with pytest.raises(RetrievalError, match=r"nofm\.md: .*front matter"):
        parse_markdown("# Title\n## A\ntext", "nofm.md", kind="topic", require_front_matter=True)


def test_packaged_corpus_loads_with_unique_ids_and_a_stable_version():
    docs = load_packaged_corpus()
    chunks = chunk_documents(docs)
    assert len(docs) >= 10
    assert len({c.id for c in chunks}) == len(chunks)
    assert all(re.fullmatch(r"[a-z0-9_-]+#[a-z0-9-]+", c.id) for c in chunks)
    assert "psoriasis#red-flags" in {c.id for c in chunks}
    assert re.fullmatch(r"[0-9a-f]{12}", corpus_version()) and corpus_version() == corpus_version()


def test_built_store_has_a_manifest_and_version():
    store = open_store(built_store_dir())
    m = store.manifest
    assert m.embedding_model == "all-MiniLM-L6-v2" and m.dimension == 384
    assert store.count() == m.chunk_count == len(chunk_documents(load_packaged_corpus()))
    assert store.version == f"{m.corpus_version}-all-MiniLM-L6-v2-{m.chunk_count}"
    meta = store.get(["psoriasis#red-flags"])["metadatas"][0]
    assert meta["conditions"] == ["psoriasis"] and meta["doc_id"] == "psoriasis"


def test_a_crash_mid_build_leaves_the_previous_store_intact(tmp_path):
    path = copy_store(tmp_path / "kb")
    before = open_store(path)
    count, generation = before.count(), before.manifest.generation
    with pytest.raises(RuntimeError, match="simulated crash"):
        build_store(path, embedder=CrashingEmbedder(shared_embedder(), ok_batches=1), batch_size=64)
    after = open_store(path)
    assert (after.count(), after.manifest.generation) == (count, generation)
    assert sorted(p.name for p in path.iterdir() if p.name.startswith("gen-")) == [generation]  # no half store
    assert KnowledgeBaseRetriever(after).search("silvery plaques on the elbows", 3)


def test_rebuild_swaps_generations_and_removes_the_old_one(tmp_path):
    path = copy_store(tmp_path / "kb")
    old = open_store(path).manifest.generation
    new = build_store(path, embedder=shared_embedder())
    assert new.manifest.generation != old and not (path / old).exists()
    assert open_store(path).count() == new.count()


def test_opening_with_another_embedding_model_is_refused():
    with pytest.raises(RetrievalError) as err:
        KnowledgeBaseStore(built_store_dir(), embedder=SentenceTransformerEmbedder("my-org/other-model"))
    message = str(err.value)
    assert "all-MiniLM-L6-v2" in message and "my-org/other-model" in message
    assert "dermassist kb build --embedding-model my-org/other-model" in message


def test_missing_store_is_a_clear_error(tmp_path):
    with pytest.raises(RetrievalError, match="no knowledge base .*dermassist kb build"):
        KnowledgeBaseStore(tmp_path / "nothing-here")


def test_add_user_documents_atomically_and_replace_on_readd(tmp_path):
    path = copy_store(tmp_path / "kb")
    store = open_store(path)
    base = store.count()
    doc = tmp_path / "clinic_nail_protocol.md"
    doc.write_text("# Clinic nail protocol\n\n## Sampling\nSend nail clippings for fungal microscopy.\n\n"
                   "## Review\nReview at twelve weeks.\n")
    store.add(load_documents([doc]))
    assert store.count() == base + 2 and store.manifest.user_documents == ["clinic_nail_protocol"]
    doc.write_text("# Clinic nail protocol\n\n## Sampling\nSend nail clippings for fungal microscopy.\n")
    reopened = open_store(path)
    reopened.add(load_documents([doc]))
    assert open_store(path).count() == base + 1  # the earlier version was replaced, not duplicated


def test_user_document_cannot_shadow_a_packaged_guideline(tmp_path):
    path = copy_store(tmp_path / "kb")
    store = open_store(path)
    (tmp_path / "psoriasis.md").write_text("## Notes\nMy psoriasis notes.\n")
    with pytest.raises(RetrievalError, match="psoriasis.md: 'psoriasis' is the id of a packaged guideline"):
        store.add(load_documents([tmp_path / "psoriasis.md"]))
    assert open_store(path).count() == store.count()


@pytest.mark.slow
def test_chroma_server_build_and_search_via_chroma_url(tmp_path):
    from support.kb import kb_cli

    server = ChromaServer(tmp_path / "chroma-data")
    try:
        built = build_store(chroma_url=server.url, embedder=shared_embedder())
        base = built.count()
        assert base == open_store(built_store_dir()).count()
        generation = built.manifest.generation
        names = {c.name for c in built.backend.client.list_collections()}
        assert f"{generation}-lexical" in names  # the keyword index lives on the server with its generation
        home = Path(os.environ["DERMASSIST_HOME"])  # the session's: its query encoder is there
        shutil.rmtree(home / "kb-lexical")  # as on another machine: the index must come from the server
        run = kb_cli("search", "itchy silvery plaques on elbows and knees", "-k", "3", "--chroma-url", server.url,
                     home=home)
        assert run.returncode == 0, run.stderr
        assert run.stdout.splitlines()[0].split()[2].startswith("psoriasis#")
        assert "indexing" not in run.stderr  # fetched, not rebuilt from every chunk
        assert len(list((home / "kb-lexical").glob(f"*/{generation}/lexical.json"))) == 1
        stats = kb_cli("stats", "--chroma-url", server.url, home=tmp_path / "home")
        assert server.url in stats.stdout and f"chunks:          {base}" in stats.stdout
        note = tmp_path / "server_note.md"
        note.write_text("## Notes\nA note kept on the shared server.\n")
        added = KnowledgeBaseStore(chroma_url=server.url, embedder=shared_embedder())
        added.add(load_documents([note]))
        assert KnowledgeBaseStore(chroma_url=server.url).count() == base + 1
        old = added.manifest.generation
        rebuilt = build_store(chroma_url=server.url, embedder=shared_embedder())
        names = {c.name for c in rebuilt.backend.client.list_collections()}
        assert rebuilt.manifest.generation in names and old not in names  # old collection dropped after switch
        assert sorted(n for n in names if n.startswith("dermassist_kb-")) == [
            rebuilt.manifest.generation, f"{rebuilt.manifest.generation}-lexical"]
    finally:
        server.stop()


def test_chroma_server_down_names_the_url():
    url = f"http://127.0.0.1:{free_port()}"
    with pytest.raises(RetrievalError, match=re.escape(url)):
        KnowledgeBaseStore(chroma_url=url)


def test_cli_reports_server_down_without_traceback(tmp_path):
    from support.kb import kb_cli

    url = f"http://127.0.0.1:{free_port()}"
    run = kb_cli("stats", "--chroma-url", url, home=tmp_path)
    assert run.returncode == 1
    assert run.stderr.startswith("error: ") and url in run.stderr and "Traceback" not in run.stderr

