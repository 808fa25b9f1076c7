"""The torch-free query encoder: the build exports and checks it, it gives sentence-transformers' vectors, opened
stores search with it, and a store whose export is missing or failed still searches (sentence-transformers)."""

from __future__ import annotations

import json
import shutil

import numpy as np
import pytest

from rag.embeddings import SentenceTransformerEmbedder
from rag.query_encoder import PROBES, TOLERANCE, OnnxEmbedder, encoder_dir
from rag.retriever import KnowledgeBaseRetriever
from rag.store import KnowledgeBaseStore
from support.kb import built_store_dir, copy_store, shared_embedder


def test_build_records_a_passing_check_in_the_manifest():
    manifest = KnowledgeBaseStore(built_store_dir()).manifest
    check = manifest.query_encoder
    assert check is not None and check.passed and check.error is None
    assert check.max_abs_diff is not None and check.max_abs_diff <= TOLERANCE
    assert check.texts_checked >= len(PROBES) + 20  # the probes plus a sample of the chunks
    assert check.key == encoder_dir("all-MiniLM-L6-v2").name
    info = json.loads((encoder_dir("all-MiniLM-L6-v2") / "encoder.json").read_text())
    assert info["check"]["passed"] and info["inputs"][0] == "input_ids"


def test_onnx_vectors_equal_sentence_transformers():
    texts = [*PROBES, "", "Ringworm: an annular scaly plaque with central clearing.", "naevus " * 3]
    fast = OnnxEmbedder(encoder_dir("all-MiniLM-L6-v2")).embed(texts)
    reference = shared_embedder().inner.embed(texts)
    assert fast.shape == reference.shape == (len(texts), 384) and fast.dtype == np.float32
    np.testing.assert_allclose(fast, reference, atol=TOLERANCE)
    np.testing.assert_allclose(np.linalg.norm(fast, axis=1), 1.0, atol=1e-5)


def test_an_opened_store_queries_with_the_export_and_finds_the_same():
    store = KnowledgeBaseStore(built_store_dir())  # no embedder given: the manifest's model, its checked export
    assert isinstance(store.embedder, OnnxEmbedder) and store.embedder.name == "all-MiniLM-L6-v2"
    reference = KnowledgeBaseRetriever(KnowledgeBaseStore(built_store_dir(), embedder=shared_embedder()))
    fast = KnowledgeBaseRetriever(store)
    for query in ["itchy silvery plaques on elbows and knees", "new mole that is growing and changing colour",
                  "honey-coloured crusts round a child's nose"]:
        assert [p.id for p in fast.search(query, 5)] == [p.id for p in reference.search(query, 5)]


def test_without_a_passing_export_queries_use_sentence_transformers(tmp_path):
    path = copy_store(tmp_path / "kb")
    manifest_file = path / "manifest.json"
    manifest = json.loads(manifest_file.read_text())
    manifest["query_encoder"] = {**manifest["query_encoder"], "passed": False, "error": "TracingError: example"}
    manifest_file.write_text(json.dumps(manifest))
    store = KnowledgeBaseStore(path)
    assert isinstance(store.embedder, SentenceTransformerEmbedder)
    manifest.pop("query_encoder")  # a store built before the export existed
    manifest_file.write_text(json.dumps(manifest))
    assert isinstance(KnowledgeBaseStore(path).embedder, SentenceTransformerEmbedder)


def test_a_damaged_export_falls_back_with_a_note(tmp_path, monkeypatch, capsys):
    home = tmp_path / "home"
    shutil.copytree(encoder_dir("all-MiniLM-L6-v2"), home / "encoders" / encoder_dir("all-MiniLM-L6-v2").name)
    monkeypatch.setenv("DERMASSIST_HOME", str(home))
    (encoder_dir("all-MiniLM-L6-v2") / "model.onnx").write_bytes(b"not an onnx graph")
    store = KnowledgeBaseStore(built_store_dir())
    assert isinstance(store.embedder, SentenceTransformerEmbedder)
    assert "cannot be loaded" in capsys.readouterr().err
    assert KnowledgeBaseRetriever(store).search("silvery plaques", 1)[0].id.startswith("psoriasis#")


@pytest.mark.slow
def test_a_machine_without_the_export_recreates_it(tmp_path, monkeypatch, capsys):
    monkeypatch.setenv("DERMASSIST_HOME", str(tmp_path / "elsewhere"))  # e.g. another reader of a Chroma server
    store = KnowledgeBaseStore(built_store_dir())
    assert "exporting the query encoder" in capsys.readouterr().err
    assert isinstance(store.embedder, OnnxEmbedder) and (encoder_dir("all-MiniLM-L6-v2") / "model.onnx").is_file()
