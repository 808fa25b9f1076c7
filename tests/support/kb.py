"""Shared pieces for the knowledge-base tests: one real store built per session, a Chroma server, a tiny PDF.

Everything here is real (all-MiniLM-L6-v2 embeddings, Chroma); ``CachingEmbedder`` only memoises real vectors so
the several stores the tests build embed each chunk once.
"""

from __future__ import annotations

import atexit
import functools
import os
import shutil
import subprocess
import tempfile
import time
from pathlib import Path

import httpx
import numpy as np

os.environ.setdefault("HF_HUB_OFFLINE", "1")
os.environ.setdefault("TRANSFORMERS_OFFLINE", "1")

from rag.embeddings import SentenceTransformerEmbedder
from rag.store import KnowledgeBaseStore, build_store
from support.net import free_port
from support.paths import BIN, REPO


class CachingEmbedder:
    """The real default embedder with a text -> vector memo (and an optional failure for crash tests)."""

    def __init__(self, inner: SentenceTransformerEmbedder):
        self.inner = inner
        self.memo: dict[str, np.ndarray] = {}

    @property
    def name(self) -> str:
        return self.inner.name

    @property
    def dimension(self) -> int:
        return self.inner.dimension

    def export_query_encoder(self, sample_texts=()):
        """The real export (rag.query_encoder): stores built with this embedder get the torch-free query path."""
        return self.inner.export_query_encoder(sample_texts)

    def embed(self, texts: list[str]) -> np.ndarray:
        todo = [t for t in dict.fromkeys(texts) if t not in self.memo]
        if todo:
            self.memo.update(zip(todo, self.inner.embed(todo), strict=False))
        if not texts:
            return np.zeros((0, self.dimension), dtype=np.float32)
        return np.stack([self.memo[t] for t in texts])


class CrashingEmbedder(CachingEmbedder):
    """Embeds ``ok_batches`` batches, then fails: a crash in the middle of a build."""

    def __init__(self, inner: CachingEmbedder, ok_batches: int = 1):
        super().__init__(inner.inner)
        self.memo = inner.memo
        self.calls = 0
        self.ok_batches = ok_batches

    def embed(self, texts: list[str]) -> np.ndarray:
        self.calls += 1
        if self.calls > self.ok_batches:
            raise RuntimeError("simulated crash while embedding")
        return super().embed(texts)


@functools.cache
def shared_embedder() -> CachingEmbedder:
    return CachingEmbedder(SentenceTransformerEmbedder())


def _scratch(prefix: str) -> Path:
    path = Path(tempfile.mkdtemp(prefix=prefix))
    atexit.register(shutil.rmtree, path, ignore_errors=True)
    return path


@functools.cache
def built_store_dir() -> Path:
    """The default knowledge base (packaged corpus, default model), built once per test session."""
    path = _scratch("kb-session-") / "kb"
    build_store(path, embedder=shared_embedder())
    return path


def copy_store(dest: Path) -> Path:
    """A private copy of the session store for tests that write."""
    shutil.copytree(built_store_dir(), dest)
    return dest


def open_store(path: Path, **kwargs) -> KnowledgeBaseStore:
    kwargs.setdefault("embedder", shared_embedder())
    return KnowledgeBaseStore(path, **kwargs)


class ChromaServer:
    """``chroma run`` as a subprocess on a free port; ready when its heartbeat answers."""

    def __init__(self, data: Path):
        self.port = free_port()
        self.url = f"http://127.0.0.1:{self.port}"
        self.log = open(data.parent / "chroma.log", "wb")  # noqa: SIM115 -- closed in stop()
        self.proc = subprocess.Popen(
            [str(BIN / "chroma"), "run", "--path", str(data), "--host", "127.0.0.1", "--port", str(self.port)],
            stdout=self.log, stderr=subprocess.STDOUT, env={**os.environ, "ANONYMIZED_TELEMETRY": "False"},
        )
        deadline = time.monotonic() + 60
        while time.monotonic() < deadline:
            if self.proc.poll() is not None:
                raise RuntimeError(f"chroma exited with {self.proc.returncode}")
            try:
                if httpx.get(f"{self.url}/api/v2/heartbeat", timeout=1).status_code == 200:
                    return
            except httpx.HTTPError:
                time.sleep(0.3)
        self.stop()
        raise RuntimeError("chroma server did not answer its heartbeat within 60 s")

    def stop(self) -> None:
        self.proc.terminate()
        try:
            self.proc.wait(timeout=15)
        except subprocess.TimeoutExpired:
            self.proc.kill()
            self.proc.wait()
        self.log.close()


def kb_cli(*args: str, home: Path, timeout: int = 300) -> subprocess.CompletedProcess:
    """``dermassist kb ...`` as a user runs it, with its own DERMASSIST_HOME."""
    env = {**os.environ, "DERMASSIST_HOME": str(home), "HF_HUB_OFFLINE": "1", "TRANSFORMERS_OFFLINE": "1"}
    return subprocess.run(
        [str(BIN / "dermassist"), "kb", *args], capture_output=True, text=True, env=env, timeout=timeout, cwd=REPO,
        check=False,
    )


def write_text_pdf(path: Path, lines: list[str]) -> Path:
    """A minimal valid one-page PDF whose text pypdf can extract (Helvetica, one line per entry)."""
    ops = ["BT", "/F1 12 Tf", "14 TL", "72 740 Td"]
    for line in lines:
        escaped = line.replace("\\", "\\\\").replace("(", "\\(").replace(")", "\\)")
        ops.append(f"({escaped}) Tj T*")
    ops.append("ET")
    stream = "\n".join(ops).encode("latin-1")
    objects = [
        b"<< /Type /Catalog /Pages 2 0 R >>",
        b"<< /Type /Pages /Kids [3 0 R] /Count 1 >>",
        (b"<< /Type /Page /Parent 2 0 R /MediaBox [0 0 612 792] /Contents 4 0 R "
         b"/Resources << /Font << /F1 5 0 R >> >> >>"),
        b"<< /Length " + str(len(stream)).encode() + b" >>\nstream\n" + stream + b"\nendstream",
        b"<< /Type /Font /Subtype /Type1 /BaseFont /Helvetica >>",
    ]
    out = bytearray(b"%PDF-1.4\n")
    offsets = []
    for number, body in enumerate(objects, start=1):
        offsets.append(len(out))
        out += f"{number} 0 obj\n".encode() + body + b"\nendobj\n"
    xref = len(out)
    out += f"xref\n0 {len(objects) + 1}\n0000000000 65535 f \n".encode()
    out += b"".join(f"{o:010d} 00000 n \n".encode() for o in offsets)
    out += f"trailer\n<< /Size {len(objects) + 1} /Root 1 0 R >>\nstartxref\n{xref}\n%%EOF\n".encode()
    path.write_bytes(bytes(out))
    return path
