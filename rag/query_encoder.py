"""The fast query encoder: the store's sentence-transformers model exported to ONNX, run with onnxruntime.

Why: embedding one search query with sentence-transformers first imports it (and torch, transformers, scipy,
scikit-learn...: seconds on a small CPU) for a few milliseconds of work. ``kb build`` therefore exports the model
it embeds with (the whole sentence-transformers pipeline: transformer, pooling, normalisation) to ONNX, checks on
probe texts and a sample of the chunks that the export gives the same vectors within ``TOLERANCE``, and records
the check in the manifest. Queries then run on onnxruntime + tokenizers only; sentence-transformers stays the
build-time embedder (chunks, ``kb add``).

Exports live in ``$DERMASSIST_HOME/encoders/<model>-<hash>/`` (``model.onnx``, ``tokenizer.json``,
``encoder.json``), one per model and machine, shared by every store (a store folder copied elsewhere, or a Chroma
server read from another machine, finds or re-creates it there). A model that cannot be exported or fails the
check keeps sentence-transformers for queries too: slower, never different.
"""

from __future__ import annotations

import hashlib
import json
import os
import re
import shutil
import sys
import uuid
import warnings
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import numpy as np
from pydantic import BaseModel

from assistant.core.errors import RetrievalError
from assistant.core.paths import dermassist_home

FORMAT = 1
TOLERANCE = 1e-4  # max |difference| of a unit-vector component; measured 2e-7 for all-MiniLM-L6-v2 (float32)
OPSET = 17
PROBES = (
    "itchy silvery plaques on elbows and knees",
    "   Pearly nodule with rolled edges on the NOSE of a 70-year-old?  ",
    "Érythème migrant — cible, «bull's-eye» rash after a tick bite; 3 cm; since 2 weeks.",
    "melanoma " * 400,  # longer than any model's window: truncation must match
)
SAMPLE_TEXTS = 32


class QueryEncoderCheck(BaseModel):
    """What the build found: recorded in the store's manifest and beside the export."""

    key: str
    passed: bool
    texts_checked: int = 0
    max_abs_diff: float | None = None
    error: str | None = None


def encoder_dir(model_name: str) -> Path:
    short = re.sub(r"[^A-Za-z0-9._-]+", "-", Path(model_name.rstrip("/\\")).name or "model")[:60]
    return dermassist_home() / "encoders" / f"{short}-{hashlib.sha256(model_name.encode()).hexdigest()[:10]}"


def _weights_fingerprint(st_model: Any) -> str:
    """A hash of every parameter: an export is reused only for exactly the weights it was made from."""
    digest = hashlib.sha256()
    for name, tensor in sorted(st_model.state_dict().items()):
        digest.update(name.encode())
        digest.update(tensor.detach().cpu().contiguous().numpy().tobytes())
    return digest.hexdigest()[:16]


def ensure_export(model_name: str, st_model: Any, sample_texts: Sequence[str] = ()) -> QueryEncoderCheck:
    """Export ``st_model`` (a loaded ``SentenceTransformer``) unless an export of the same weights exists, and check
    it against ``st_model`` on the probes plus up to ``SAMPLE_TEXTS`` of ``sample_texts``."""
    folder = encoder_dir(model_name)
    fingerprint = _weights_fingerprint(st_model)
    try:
        info = json.loads((folder / "encoder.json").read_text(encoding="utf-8"))
        if info.get("format") == FORMAT and info.get("fingerprint") == fingerprint:
            check = QueryEncoderCheck.model_validate(info["check"])
            if check.passed and not sample_texts:
                return check
        else:
            info = None
    except (OSError, ValueError, KeyError):
        info = None
    if info is None:
        try:
            _export(model_name, st_model, folder, fingerprint)
        except Exception as err:  # an architecture the exporter cannot trace: queries keep sentence-transformers
            return QueryEncoderCheck(key=folder.name, passed=False, error=f"{type(err).__name__}: {err}"[:300])
    check = _check(folder, st_model, sample_texts)
    info = json.loads((folder / "encoder.json").read_text(encoding="utf-8"))
    _write_json(folder / "encoder.json", {**info, "check": check.model_dump()})
    return check


def _write_json(path: Path, data: dict) -> None:
    """Replace ``path`` in one step: a process reading it sees the old or the new file, never half of one."""
    tmp = path.with_name(f".{path.name}.{uuid.uuid4().hex[:6]}.tmp")
    tmp.write_text(json.dumps(data, indent=2), encoding="utf-8")
    os.replace(tmp, path)


def _export(model_name: str, st_model: Any, folder: Path, fingerprint: str) -> None:
    import torch

    tokenizer = st_model.tokenizer
    names = [n for n in ("input_ids", "attention_mask", "token_type_ids") if n in tokenizer.model_input_names]

    class Pipeline(torch.nn.Module):
        """The whole sentence-transformers pipeline, called with keyword features (as it calls its model)."""

        def __init__(self) -> None:
            super().__init__()
            self.st = st_model

        def forward(self, *tensors):
            return self.st(dict(zip(names, tensors, strict=True)))["sentence_embedding"]

    example = tokenizer(list(PROBES[:2]), padding=True, return_tensors="pt")
    tmp = folder.with_name(f".{folder.name}.{uuid.uuid4().hex[:6]}.tmp")
    tmp.mkdir(parents=True)
    try:
        with torch.inference_mode(), warnings.catch_warnings():
            warnings.simplefilter("ignore")  # tracer notes on Python-side checks: noise on a user's stderr
            torch.onnx.export(
                Pipeline().eval(), tuple(example[n] for n in names), str(tmp / "model.onnx"), input_names=names,
                output_names=["embedding"], opset_version=OPSET, dynamo=False,
                dynamic_axes={**{n: {0: "batch", 1: "tokens"} for n in names}, "embedding": {0: "batch"}},
            )
        tokenizer.backend_tokenizer.save(str(tmp / "tokenizer.json"))
        info = {
            "format": FORMAT, "model": model_name, "fingerprint": fingerprint, "inputs": names,
            "max_seq_length": int(st_model.max_seq_length), "dimension": int(_dimension(st_model)),
            "pad_id": int(tokenizer.pad_token_id or 0), "pad_token": str(tokenizer.pad_token or "[PAD]"),
        }
        _write_json(tmp / "encoder.json", info)
        shutil.rmtree(folder, ignore_errors=True)
        os.replace(tmp, folder)
    except BaseException:
        shutil.rmtree(tmp, ignore_errors=True)
        raise


def _dimension(st_model: Any) -> int:
    getter = getattr(st_model, "get_embedding_dimension", None) or st_model.get_sentence_embedding_dimension
    return int(getter())


def _check(folder: Path, st_model: Any, sample_texts: Sequence[str]) -> QueryEncoderCheck:
    texts = list(PROBES)
    if sample_texts:
        step = max(1, len(sample_texts) // SAMPLE_TEXTS)
        texts += list(sample_texts[::step][:SAMPLE_TEXTS])
    try:
        fast = OnnxEmbedder(folder).embed(texts)
    except Exception as err:
        return QueryEncoderCheck(key=folder.name, passed=False, error=f"{type(err).__name__}: {err}"[:300])
    reference = np.asarray(st_model.encode(texts, normalize_embeddings=True, convert_to_numpy=True,
                                           show_progress_bar=False), dtype=np.float32)
    diff = float(np.abs(fast - reference).max()) if fast.shape == reference.shape else float("inf")
    return QueryEncoderCheck(key=folder.name, passed=diff <= TOLERANCE, texts_checked=len(texts),
                             max_abs_diff=diff)


class OnnxEmbedder:
    """An ``Embedder`` over an export: onnxruntime + tokenizers, no torch. One thread, no spinning: a query is a
    few milliseconds of work and the process usually has a model generating beside it."""

    def __init__(self, folder: Path, *, threads: int = 1):
        import onnxruntime
        from tokenizers import Tokenizer

        info = json.loads((folder / "encoder.json").read_text(encoding="utf-8"))
        if info.get("format") != FORMAT:
            raise RetrievalError(f"The query encoder in {folder} has an unknown format; rebuild the knowledge base.")
        self.name: str = info["model"]
        self.dimension: int = info["dimension"]
        self._inputs: list[str] = info["inputs"]
        self._tokenizer = Tokenizer.from_file(str(folder / "tokenizer.json"))
        self._tokenizer.enable_truncation(max_length=info["max_seq_length"])
        self._tokenizer.enable_padding(pad_id=info["pad_id"], pad_token=info["pad_token"])
        options = onnxruntime.SessionOptions()
        options.intra_op_num_threads = threads
        options.inter_op_num_threads = 1
        options.add_session_config_entry("session.intra_op.allow_spinning", "0")
        options.log_severity_level = 3  # warnings about unused initialisers are not the user's business
        self._session = onnxruntime.InferenceSession(str(folder / "model.onnx"), options,
                                                     providers=["CPUExecutionProvider"])

    def embed(self, texts: list[str]) -> np.ndarray:
        if not texts:
            return np.zeros((0, self.dimension), dtype=np.float32)
        out = []
        for start in range(0, len(texts), 32):
            encodings = self._tokenizer.encode_batch(list(texts[start:start + 32]))
            columns = {"input_ids": [e.ids for e in encodings], "attention_mask": [e.attention_mask for e in encodings],
                       "token_type_ids": [e.type_ids for e in encodings]}
            feed = {name: np.asarray(columns[name], dtype=np.int64) for name in self._inputs}
            out.append(self._session.run(["embedding"], feed)[0])
        return np.concatenate(out).astype(np.float32)


def open_query_encoder(model_name: str, check: QueryEncoderCheck | None) -> OnnxEmbedder | None:
    """The export the manifest's check vouches for, re-created on this machine if it is missing; None when the
    model has no passing export (queries then use sentence-transformers)."""
    if check is None or not check.passed:
        return None
    folder = encoder_dir(model_name)
    if not (folder / "model.onnx").is_file():
        from rag.embeddings import SentenceTransformerEmbedder

        print(f"dermassist: exporting the query encoder for {model_name} on this machine (once)...",
              file=sys.stderr, flush=True)
        if not SentenceTransformerEmbedder(model_name).export_query_encoder().passed:
            return None
    try:
        return OnnxEmbedder(folder)
    except Exception as err:  # a damaged export: queries fall back to sentence-transformers, which is never wrong
        print(f"dermassist: the query encoder in {folder} cannot be loaded ({type(err).__name__}); "
              "using sentence-transformers.", file=sys.stderr, flush=True)
        return None
