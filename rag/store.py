"""The Chroma store behind the knowledge base: atomic builds and adds, a manifest, two backends.

Layout, embedded (default, ``chromadb.PersistentClient``)::

    <store>/manifest.json       which generation is live + embedding model, dimension, corpus version, counts,
                                the query-encoder check (``rag.query_encoder``)
    <store>/gen-<stamp>/        one complete Chroma database per generation, and in it
    <store>/gen-<stamp>/lexical/    that generation's BM25 index (``rag.lexical``)
    <store>/.lock               one writer at a time (filelock)

Every write (``build_store``, ``KnowledgeBaseStore.add``) goes into a *fresh* generation; only when it is
complete is ``manifest.json`` replaced with ``os.replace`` (atomic on POSIX), and only then is the old generation
deleted. A crash at any point leaves the previous manifest pointing at the previous, intact generation; orphaned
generations are removed by the next write. (Swapping whole directories would need two renames, with a moment in
which no store exists; switching a one-file pointer is a single atomic step.)

With a Chroma server (``chroma_url``), generations are collections ``<name>-<stamp>`` and the manifest is the
metadata of the pointer collection ``<name>``, switched with one ``modify`` call after the new collection is
complete; the old collection is deleted afterwards. A generation's BM25 index is stored on the server too, as the
files of a companion collection ``<generation>-lexical`` written before the switch, and downloaded once per machine
into ``$DERMASSIST_HOME/kb-lexical/<server>/<generation>/`` to be memory-mapped. (Kept only in a local cache, every
machine reading a shared server would rebuild it by reading every chunk back: what the persisted index avoids.)

Embeddings are always computed here (``rag.embeddings``) and passed to Chroma explicitly; the store records the
model and refuses queries with another one.
"""

from __future__ import annotations

import base64
import contextlib
import hashlib
import os
import re
import shutil
import sys
import time
import uuid
from collections.abc import Iterator, Sequence
from datetime import UTC, datetime
from pathlib import Path
from typing import Any, Protocol
from urllib.parse import urlparse

import numpy as np
from pydantic import BaseModel

from assistant.core.errors import RetrievalError
from assistant.core.ontology import default_ontology
from assistant.core.paths import default_store_dir, dermassist_home
from rag.corpus import Chunk, GuidelineDoc, chunk_documents, corpus_version, load_packaged_corpus
from rag.embeddings import Embedder, ExportsQueryEncoder, SentenceTransformerEmbedder, get_embedder, model_short_name
from rag.lexical import FILES as LEXICAL_FILES
from rag.lexical import LexicalIndex, LexicalWriter, open_index
from rag.query_encoder import OnnxEmbedder, QueryEncoderCheck, open_query_encoder

COLLECTION = "dermassist_kb"
MANIFEST_FILE = "manifest.json"
WRITE_BATCH = 256
LOCK_TIMEOUT_S = 600
LEXICAL = "lexical"
LEXICAL_PART_BYTES = 4 * 2**20  # a lexical-index file is stored on a Chroma server in documents of this size


MANIFEST_FORMAT = 2  # 2: each generation has its lexical index (a format-1 generation gets one on first search)


class Manifest(BaseModel):
    format: int = MANIFEST_FORMAT
    embedding_model: str
    dimension: int
    corpus_version: str
    chunk_count: int
    doc_count: int
    user_documents: list[str] = []
    built_at: str
    updated_at: str
    generation: str
    query_encoder: QueryEncoderCheck | None = None  # None: built before the export existed (or by a test embedder)

    @property
    def version(self) -> str:
        """``<corpus_version>-<embedding model short name>-<n chunks>``: recorded in report provenance."""
        return f"{self.corpus_version}-{model_short_name(self.embedding_model)}-{self.chunk_count}"


def _now() -> str:
    return datetime.now(UTC).isoformat(timespec="seconds")


def _note(message: str) -> None:
    print(f"dermassist: {message}", file=sys.stderr, flush=True)


def _settings():
    from chromadb.config import Settings

    return Settings(anonymized_telemetry=False)


def _categories(condition_ids: Sequence[str]) -> list[str]:
    """Ontology categories of the conditions (a user document may name ids the ontology lacks: no category)."""
    ontology = default_ontology()
    return sorted({ontology.get(cid).category.value for cid in condition_ids if cid in ontology})


def chunk_metadata(chunk: Chunk) -> dict[str, Any]:
    """Chroma metadata for a chunk (no ``None`` values and no empty lists: Chroma rejects both)."""
    meta: dict[str, Any] = {
        "doc_id": chunk.doc_id,
        "doc_title": chunk.doc_title,
        "section": chunk.section,
        "source": chunk.source,
        "kind": chunk.kind,
    }
    if chunk.url:
        meta["url"] = chunk.url
    if chunk.conditions:
        meta["conditions"] = list(chunk.conditions)
    categories = _categories(chunk.conditions)
    if categories:
        meta["categories"] = categories
    return meta


class Backend(Protocol):
    """Where generations live: a folder of Chroma databases, or collections on a Chroma server."""

    location: str

    def read_manifest(self) -> Manifest | None: ...
    def new_generation(self) -> str: ...
    def collection(self, generation: str, *, create: bool = False): ...
    def commit(self, manifest: Manifest) -> None: ...
    def drop(self, generation: str) -> None: ...
    def drop_orphans(self, live: str | None) -> None: ...
    def lock(self) -> contextlib.AbstractContextManager: ...
    def save_lexical(self, generation: str, writer: LexicalWriter) -> None: ...
    def open_lexical(self, generation: str) -> LexicalIndex | None: ...


class LocalBackend:
    def __init__(self, path: Path):
        self.path = Path(path).expanduser()
        self.location = str(self.path)
        self._clients: dict[str, Any] = {}

    def read_manifest(self) -> Manifest | None:
        file = self.path / MANIFEST_FILE
        try:
            return Manifest.model_validate_json(file.read_text(encoding="utf-8"))
        except FileNotFoundError:
            return None
        except (OSError, ValueError):
            raise RetrievalError(
                f"The knowledge-base manifest in {self.path} is unreadable; rebuild it with `dermassist kb build`."
            ) from None

    def new_generation(self) -> str:
        return f"gen-{time.strftime('%Y%m%dT%H%M%S')}-{uuid.uuid4().hex[:6]}"

    def _client(self, generation: str):
        if generation not in self._clients:
            import chromadb

            self._clients[generation] = chromadb.PersistentClient(
                path=str(self.path / generation), settings=_settings()
            )
        return self._clients[generation]

    def collection(self, generation: str, *, create: bool = False):
        if not create and not (self.path / generation).is_dir():
            raise RetrievalError(
                f"The knowledge base in {self.path} is damaged; rebuild it with `dermassist kb build`.")
        client = self._client(generation)
        if create:
            return client.create_collection(
                COLLECTION, embedding_function=None, configuration={"hnsw": {"space": "cosine"}}
            )
        return client.get_collection(COLLECTION, embedding_function=None)

    def release(self, generation: str) -> None:
        client = self._clients.pop(generation, None)
        if client is not None:
            with contextlib.suppress(Exception):
                client.close()

    def commit(self, manifest: Manifest) -> None:
        self.release(manifest.generation)  # close the writer's client: everything is flushed to disk
        tmp = self.path / f".{MANIFEST_FILE}.{uuid.uuid4().hex[:6]}.tmp"
        tmp.write_text(manifest.model_dump_json(indent=2), encoding="utf-8")
        with open(tmp, "rb") as fh:
            os.fsync(fh.fileno())
        os.replace(tmp, self.path / MANIFEST_FILE)

    def drop(self, generation: str) -> None:
        self.release(generation)
        shutil.rmtree(self.path / generation, ignore_errors=True)

    def drop_orphans(self, live: str | None) -> None:
        if not self.path.is_dir():
            return
        for entry in self.path.iterdir():
            if entry.is_dir() and entry.name.startswith("gen-") and entry.name != live:
                self.drop(entry.name)
            elif entry.name.startswith(f".{MANIFEST_FILE}.") and entry.name.endswith(".tmp"):
                entry.unlink(missing_ok=True)

    def save_lexical(self, generation: str, writer: LexicalWriter) -> None:
        writer.write(self.path / generation / LEXICAL)

    def open_lexical(self, generation: str) -> LexicalIndex | None:
        return open_index(self.path / generation / LEXICAL)

    def lock(self):
        from filelock import FileLock, Timeout

        self.path.mkdir(parents=True, exist_ok=True)
        lock = FileLock(str(self.path / ".lock"), timeout=LOCK_TIMEOUT_S)

        @contextlib.contextmanager
        def held():
            try:
                lock.acquire()
            except Timeout:
                raise RetrievalError(f"Another dermassist process has been writing {self.path} for too long.") from None
            try:
                yield
            finally:
                lock.release()

        return held()


class ServerBackend:
    """A Chroma server (``chroma run --path DIR --host 127.0.0.1 --port 8001``) reached over HTTP."""

    def __init__(self, url: str, name: str = COLLECTION):
        parsed = urlparse(url)
        if parsed.scheme not in ("http", "https") or not parsed.hostname:
            raise RetrievalError(f"Chroma URL '{url}' is not valid; use http://host:port, e.g. http://127.0.0.1:8001.")
        self.url = url.rstrip("/")
        self.location = self.url
        self.name = name
        import chromadb

        with self.errors():
            self.client = chromadb.HttpClient(
                host=parsed.hostname,
                port=parsed.port or (443 if parsed.scheme == "https" else 8000),
                ssl=parsed.scheme == "https",
                settings=_settings(),
            )
            self.client.heartbeat()

    @contextlib.contextmanager
    def errors(self) -> Iterator[None]:
        """Connection failures become one clear sentence naming the URL."""
        try:
            yield
        except RetrievalError:
            raise
        except Exception as err:
            if _is_connection_error(err):
                raise RetrievalError(
                    f"The Chroma server at {self.url} is not reachable; start it with "
                    "`chroma run --path DIR --host 127.0.0.1 --port PORT` or check --chroma-url."
                ) from None
            raise

    def _pointer(self):
        from chromadb.errors import NotFoundError

        with self.errors():
            try:
                return self.client.get_collection(self.name, embedding_function=None)
            except (NotFoundError, ValueError):
                return None

    def read_manifest(self) -> Manifest | None:
        pointer = self._pointer()
        raw = (pointer.metadata or {}).get("manifest") if pointer is not None else None
        if not raw:
            return None
        try:
            return Manifest.model_validate_json(raw)
        except ValueError:
            raise RetrievalError(
                f"The knowledge-base manifest on {self.url} is unreadable; rebuild it with `dermassist kb build`."
            ) from None

    def new_generation(self) -> str:
        return f"{self.name}-{time.strftime('%Y%m%dT%H%M%S')}-{uuid.uuid4().hex[:6]}"

    def collection(self, generation: str, *, create: bool = False):
        with self.errors():
            if create:
                return self.client.create_collection(
                    generation, embedding_function=None, configuration={"hnsw": {"space": "cosine"}}
                )
            try:
                return self.client.get_collection(generation, embedding_function=None)
            except Exception as err:
                if _is_connection_error(err):
                    raise
                raise RetrievalError(
                    f"The knowledge base on {self.url} is damaged; rebuild it with `dermassist kb build`."
                ) from None

    def commit(self, manifest: Manifest) -> None:
        with self.errors():
            pointer = self._pointer()
            if pointer is None:
                self.client.create_collection(
                    self.name, embedding_function=None, metadata={"manifest": manifest.model_dump_json()}
                )
            else:
                pointer.modify(metadata={"manifest": manifest.model_dump_json()})

    def drop(self, generation: str) -> None:
        for name in (generation, f"{generation}-{LEXICAL}"):
            with contextlib.suppress(Exception), self.errors():
                self.client.delete_collection(name)
        shutil.rmtree(self._cache(generation), ignore_errors=True)

    def drop_orphans(self, live: str | None) -> None:
        with self.errors():
            names = [getattr(c, "name", c) for c in self.client.list_collections()]
        keep = {live, f"{live}-{LEXICAL}"}
        for name in names:
            if name.startswith(f"{self.name}-") and name not in keep:
                self.drop(name.removesuffix(f"-{LEXICAL}"))  # a generation and its index go together

    def _cache(self, generation: str) -> Path:
        server = re.sub(r"[^A-Za-z0-9._-]+", "_", self.url.split("://", 1)[-1])
        return dermassist_home() / "kb-lexical" / server / generation

    def save_lexical(self, generation: str, writer: LexicalWriter) -> None:
        """Write the index locally, then store its files on the server (documents of base64 parts) so that any
        machine can fetch it instead of rebuilding it from every chunk."""
        folder = self._cache(generation)
        shutil.rmtree(folder, ignore_errors=True)
        folder.parent.mkdir(parents=True, exist_ok=True)
        writer.write(folder)
        ids, documents, metadatas = [], [], []
        for name in LEXICAL_FILES:
            data = (folder / name).read_bytes()
            parts, digest = max(1, -(-len(data) // LEXICAL_PART_BYTES)), hashlib.sha256(data).hexdigest()
            for part in range(parts):
                chunk = data[part * LEXICAL_PART_BYTES : (part + 1) * LEXICAL_PART_BYTES]
                ids.append(f"{name}#{part}")
                documents.append(base64.b64encode(chunk).decode("ascii"))
                metadatas.append({"file": name, "part": part, "parts": parts, "sha256": digest})
        with self.errors():
            files = self.client.create_collection(f"{generation}-{LEXICAL}", embedding_function=None)
            for start in range(0, len(ids), 8):
                files.add(ids=ids[start:start + 8], documents=documents[start:start + 8],
                          metadatas=metadatas[start:start + 8], embeddings=[[1.0]] * len(ids[start:start + 8]))

    def open_lexical(self, generation: str) -> LexicalIndex | None:
        folder = self._cache(generation)
        index = open_index(folder)
        if index is None and self._download(generation, folder):
            index = open_index(folder)
        if index is not None:  # cached indexes of generations this server no longer serves are dead weight
            for other in folder.parent.iterdir():
                if other.name != generation:
                    shutil.rmtree(other, ignore_errors=True)
        return index

    def _download(self, generation: str, folder: Path) -> bool:
        from chromadb.errors import NotFoundError

        with self.errors():
            try:
                files = self.client.get_collection(f"{generation}-{LEXICAL}", embedding_function=None)
            except (NotFoundError, ValueError):
                return False  # a generation written before lexical indexes existed
            got = files.get(include=["documents", "metadatas"])
        parts: dict[str, dict[int, bytes]] = {}
        digests: dict[str, str] = {}
        for document, meta in zip(got["documents"], got["metadatas"], strict=True):
            parts.setdefault(meta["file"], {})[int(meta["part"])] = base64.b64decode(document)
            digests[meta["file"]] = meta["sha256"]
        tmp = folder.with_name(f".{folder.name}.{uuid.uuid4().hex[:6]}.tmp")
        tmp.mkdir(parents=True)
        try:
            for name, pieces in parts.items():
                data = b"".join(pieces[i] for i in sorted(pieces))
                if hashlib.sha256(data).hexdigest() != digests[name]:
                    return False
                (tmp / name).write_bytes(data)
            shutil.rmtree(folder, ignore_errors=True)
            os.replace(tmp, folder)
            return True
        finally:
            shutil.rmtree(tmp, ignore_errors=True)

    def lock(self):
        return contextlib.nullcontext()  # a server has no shared file to lock; run one writer at a time


def _is_connection_error(err: BaseException) -> bool:
    import httpx

    seen: set[int] = set()
    while err is not None and id(err) not in seen:
        seen.add(id(err))
        if isinstance(err, (httpx.TransportError, ConnectionError, TimeoutError)):
            return True
        text = str(err).lower()
        if "could not connect" in text or "connection refused" in text:
            return True
        err = err.__cause__ or err.__context__
    return False


def get_backend(path: Path | str | None = None, chroma_url: str | None = None) -> Backend:
    if chroma_url:
        return ServerBackend(chroma_url)
    return LocalBackend(Path(path) if path else default_store_dir())


def no_store_error(backend: Backend) -> RetrievalError:
    if isinstance(backend, ServerBackend):
        return RetrievalError(
            f"There is no knowledge base on the Chroma server at {backend.url}; "
            f"run `dermassist kb build --chroma-url {backend.url}` first."
        )
    return RetrievalError(f"There is no knowledge base in {backend.location}; run `dermassist kb build` first.")


class KnowledgeBaseStore:
    """An opened store: its manifest, its live collection, its lexical index and the embedder that matches it.

    Without an explicit ``embedder`` (or with the manifest's model name) queries are embedded by the manifest's
    checked ONNX export (``rag.query_encoder``), so searching never imports torch; writes (``add``) embed with
    sentence-transformers.
    """

    def __init__(
        self,
        path: Path | str | None = None,
        *,
        chroma_url: str | None = None,
        embedder: str | Embedder | None = None,
        backend: Backend | None = None,
    ):
        self.backend = backend or get_backend(path, chroma_url)
        manifest = self.backend.read_manifest()
        if manifest is None:
            raise no_store_error(self.backend)
        if embedder is None or embedder == manifest.embedding_model:
            self.embedder = open_query_encoder(manifest.embedding_model, manifest.query_encoder) or get_embedder(
                manifest.embedding_model)
        else:
            self.embedder = get_embedder(embedder)
        self._lexical: tuple[str, LexicalIndex] | None = None
        if self.embedder.name != manifest.embedding_model:
            raise RetrievalError(
                f"The knowledge base was built with embedding model '{manifest.embedding_model}' but "
                f"'{self.embedder.name}' was asked for; rebuild it with "
                f"`dermassist kb build --embedding-model {self.embedder.name}`."
            )
        self._open(manifest)

    def _open(self, manifest: Manifest) -> None:
        self.manifest = manifest
        self.collection = self.backend.collection(manifest.generation)

    @property
    def version(self) -> str:
        return self.manifest.version

    def refresh(self) -> None:
        """Follow a rebuild or add made by another process since this store was opened (cheap manifest read)."""
        current = self.backend.read_manifest()
        if current is None or current.generation == self.manifest.generation:
            return
        if current.embedding_model != self.embedder.name:
            raise RetrievalError(
                f"The knowledge base was rebuilt with embedding model '{current.embedding_model}'; "
                "restart dermassist to use it."
            )
        self._open(current)

    def count(self) -> int:
        return self.collection.count()

    def lexical(self) -> LexicalIndex:
        """The live generation's BM25 index, memory-mapped (a generation from before lexical indexes gets one now,
        once: the only time a search reads every chunk)."""
        generation = self.manifest.generation
        if self._lexical is None or self._lexical[0] != generation:
            index = self.backend.open_lexical(generation) or self._index_old_generation(generation)
            self._lexical = (generation, index)
        return self._lexical[1]

    def _index_old_generation(self, generation: str) -> LexicalIndex:
        _note(f"indexing the knowledge base at {self.backend.location} for keyword search (once)...")
        with self.backend.lock():
            index = self.backend.open_lexical(generation)  # another process may have done it meanwhile
            if index is None:
                writer = LexicalWriter()
                for r in self.records():
                    writer.add([r["id"]], [r["document"]], [r["metadata"]])
                self.backend.save_lexical(generation, writer)
                index = self.backend.open_lexical(generation)
        if index is None:
            raise RetrievalError(f"The knowledge base in {self.backend.location} could not be indexed for keyword "
                                 "search; rebuild it with `dermassist kb build`.")
        return index

    def records(self, *, embeddings: bool = False, page: int = 1000) -> Iterator[dict[str, Any]]:
        """Every stored chunk as ``{"id", "document", "metadata"[, "embedding"]}``, paged."""
        include = ["documents", "metadatas"] + (["embeddings"] if embeddings else [])
        total = self.count()
        for offset in range(0, total, page):
            got = self.collection.get(include=include, limit=page, offset=offset)
            for i, cid in enumerate(got["ids"]):
                record = {"id": cid, "document": got["documents"][i], "metadata": got["metadatas"][i]}
                if embeddings:
                    record["embedding"] = np.asarray(got["embeddings"][i], dtype=np.float32)
                yield record

    def query(self, embedding: np.ndarray, n: int, where: dict[str, Any] | None = None) -> dict[str, list]:
        """Nearest ``n`` chunks (ids, documents, metadatas, cosine distances, embeddings) of one query vector."""
        n = min(n, self.count())
        if n <= 0:
            return {"ids": [], "documents": [], "metadatas": [], "distances": [], "embeddings": []}
        result = self.collection.query(
            query_embeddings=[np.asarray(embedding, dtype=np.float32).tolist()],
            n_results=n,
            where=where or None,
            include=["documents", "metadatas", "distances", "embeddings"],
        )
        return {key: list(result[key][0]) for key in ("ids", "documents", "metadatas", "distances", "embeddings")}

    def get(self, ids: list[str]) -> dict[str, list]:
        """Stored chunks by id (ids, documents, metadatas, embeddings), in the order asked."""
        got = self.collection.get(ids=ids, include=["documents", "metadatas", "embeddings"])
        where = {cid: i for i, cid in enumerate(got["ids"])}
        order = [where[cid] for cid in ids if cid in where]
        return {
            "ids": [got["ids"][i] for i in order],
            "documents": [got["documents"][i] for i in order],
            "metadatas": [got["metadatas"][i] for i in order],
            "embeddings": [np.asarray(got["embeddings"][i], dtype=np.float32) for i in order],
        }

    def add(self, docs: list[GuidelineDoc]) -> Manifest:
        """Add (or replace, by doc id) user documents: embed all first, then write a new generation atomically."""
        packaged = {r["metadata"]["doc_id"] for r in self.records() if r["metadata"].get("kind") != "user"}
        clash = next((d for d in docs if d.doc_id in packaged), None)
        if clash is not None:
            raise RetrievalError(
                f"{clash.file_name}: '{clash.doc_id}' is the id of a packaged guideline; rename the file "
                "or set another doc_id in its front matter."
            )
        chunks = chunk_documents(docs)
        # chunks are embedded by the build-time model, not by the query encoder
        writer = SentenceTransformerEmbedder(self.embedder.name) if isinstance(self.embedder, OnnxEmbedder) else (
            self.embedder)
        vectors = writer.embed([c.text for c in chunks])
        replaced = {d.doc_id for d in docs}
        with self.backend.lock():
            current = self.backend.read_manifest() or self.manifest
            self._open(current)
            kept = [r for r in self.records(embeddings=True) if r["metadata"]["doc_id"] not in replaced]

            def batches() -> Iterator[tuple[list, np.ndarray, list, list]]:
                for start in range(0, len(kept), WRITE_BATCH):
                    part = kept[start : start + WRITE_BATCH]
                    yield (
                        [r["id"] for r in part],
                        np.stack([r["embedding"] for r in part]),
                        [r["document"] for r in part],
                        [r["metadata"] for r in part],
                    )
                for start in range(0, len(chunks), WRITE_BATCH):
                    part = chunks[start : start + WRITE_BATCH]
                    yield (
                        [c.id for c in part],
                        vectors[start : start + WRITE_BATCH],
                        [c.text for c in part],
                        [chunk_metadata(c) for c in part],
                    )

            user_docs = sorted(set(current.user_documents) | replaced)
            doc_count = len({r["metadata"]["doc_id"] for r in kept} | replaced)
            manifest = current.model_copy(
                update={"user_documents": user_docs, "doc_count": doc_count, "updated_at": _now()}
            )
            self._open(_write_generation(self.backend, manifest, batches()))
        return self.manifest


def _write_generation(
    backend: Backend, manifest: Manifest, batches: Iterator[tuple[list, np.ndarray, list, list]]
) -> Manifest:
    """Write all batches into a fresh generation and switch the manifest to it; on any failure drop it."""
    old = backend.read_manifest()
    backend.drop_orphans(old.generation if old else None)
    generation = backend.new_generation()
    try:
        collection = backend.collection(generation, create=True)
        lexical = LexicalWriter()
        for ids, vectors, documents, metadatas in batches:
            collection.add(ids=ids, embeddings=np.asarray(vectors, dtype=np.float32), documents=documents,
                           metadatas=metadatas)
            lexical.add(ids, documents, metadatas)
        count = len(lexical)
        if count == 0:
            raise RetrievalError("Nothing to store: the knowledge base would be empty.")
        backend.save_lexical(generation, lexical)  # part of the generation: live with it, or dropped with it
        final = manifest.model_copy(update={"generation": generation, "chunk_count": count, "format": MANIFEST_FORMAT})
        backend.commit(final)
    except BaseException:
        backend.drop(generation)
        raise
    if old is not None and old.generation != generation:
        backend.drop(old.generation)
    return final


def build_store(
    path: Path | str | None = None,
    *,
    chroma_url: str | None = None,
    embedder: str | Embedder | None = None,
    user_docs: Sequence[GuidelineDoc] = (),
    batch_size: int = WRITE_BATCH,
    backend: Backend | None = None,
) -> KnowledgeBaseStore:
    """(Re)build the store from the packaged corpus plus ``user_docs``; the previous store stays live until done."""
    docs = load_packaged_corpus() + list(user_docs)
    return write_chunks(
        backend or get_backend(path, chroma_url),
        chunk_documents(docs),
        embedder=embedder,
        corpus=corpus_version(),
        doc_count=len(docs),
        user_documents=sorted(d.doc_id for d in user_docs),
        batch_size=batch_size,
    )


def write_chunks(
    backend: Backend,
    chunks: Sequence[Chunk],
    *,
    embedder: str | Embedder | None = None,
    corpus: str,
    doc_count: int,
    user_documents: Sequence[str] = (),
    batch_size: int = WRITE_BATCH,
) -> KnowledgeBaseStore:
    """Embed ``chunks`` batch by batch into a fresh generation and make it live (``build_store``, benchmarks)."""
    embedder = get_embedder(embedder)
    started = _now()
    # export + check first (it loads the model the batches need anyway): the check goes into this manifest
    check = embedder.export_query_encoder([c.text for c in chunks]) if isinstance(
        embedder, ExportsQueryEncoder) else None

    def batches() -> Iterator[tuple[list, np.ndarray, list, list]]:
        for start in range(0, len(chunks), batch_size):
            part = chunks[start : start + batch_size]
            texts = [c.text for c in part]
            yield [c.id for c in part], embedder.embed(texts), texts, [chunk_metadata(c) for c in part]

    with backend.lock():
        manifest = Manifest(
            embedding_model=embedder.name,
            dimension=embedder.dimension,
            corpus_version=corpus,
            chunk_count=len(chunks),
            doc_count=doc_count,
            user_documents=list(user_documents),
            built_at=started,
            updated_at=started,
            generation="",
            query_encoder=check,
        )
        _write_generation(backend, manifest, batches())
    return KnowledgeBaseStore(backend=backend, embedder=embedder)


def open_or_build(
    path: Path | str | None = None,
    *,
    chroma_url: str | None = None,
    embedder: str | Embedder | None = None,
) -> KnowledgeBaseStore:
    """Open the store, building it from the packaged corpus first if there is none (with a note on stderr)."""
    backend = get_backend(path, chroma_url)
    if backend.read_manifest() is None:
        _note(f"building the guideline knowledge base in {backend.location} (first use; takes about a minute)...")
        return build_store(backend=backend, embedder=embedder)
    store = KnowledgeBaseStore(backend=backend, embedder=embedder)
    packaged = corpus_version()
    if store.manifest.corpus_version != packaged:
        _note(
            f"the knowledge base was built from guideline corpus {store.manifest.corpus_version} but this "
            f"dermassist ships {packaged}; run `dermassist kb build` to update it."
        )
    return store

