"""The guideline corpus: documents with front matter, heading-aware chunks with stable ids, a corpus version.

Packaged documents live in ``rag/corpus/conditions/*.md`` and ``rag/corpus/topics/*.md`` (format in
``docs/kb-spec.md``) and are found with ``importlib.resources`` so an installed package finds them too. Every
``##`` section becomes one chunk ``<doc_id>#<slug>``; a section longer than ``MAX_CHUNK_CHARS`` is split on
paragraphs into ``<slug>``, ``<slug>-2``, ``<slug>-3``... Chunk text starts with "<doc title> — <section>" so the
embedder sees what the paragraph is about.
"""

from __future__ import annotations

import hashlib
import re
from datetime import date
from importlib import resources
from importlib.resources.abc import Traversable
from typing import Any, Literal

import yaml
from pydantic import BaseModel, Field, ValidationError

from assistant.core.errors import RetrievalError, first_error
from assistant.core.ontology import Urgency

MAX_CHUNK_CHARS = 1200
PACKAGED_FOLDERS = (("condition", "conditions"), ("topic", "topics"))
DOC_ID_PATTERN = re.compile(r"^[a-z0-9][a-z0-9_-]*$")
DocKind = Literal["condition", "topic", "user"]


class Source(BaseModel):
    organisation: str
    title: str | None = None
    year: int | None = None
    url: str | None = None

    def short_name(self) -> str:
        """'National Institute for Health and Care Excellence (NICE)' -> 'NICE'."""
        match = re.search(r"\(([^()]+)\)\s*$", self.organisation)
        return match.group(1) if match else self.organisation


class GuidelineDoc(BaseModel):
    title: str = Field(min_length=1)
    doc_id: str = Field(pattern=DOC_ID_PATTERN.pattern)
    conditions: list[str] = Field(default_factory=list)
    sources: list[Source] = Field(default_factory=list)
    referral_urgency: Urgency | None = Field(
        None, description="condition documents: the urgency of a typical suspected case; equals the ontology's "
                          "default_urgency (checked by tests/core/test_ontology.py)")
    reviewed_by: list[str] = Field(
        default_factory=list, description="named clinicians who signed the text off; empty until one does")
    last_reviewed: date | None = Field(None, description="date of that sign-off; null until a clinician reviews it")
    drafted: date | None = Field(None, description="when the project wrote the text")
    body: str
    kind: DocKind = "user"
    file_name: str | None = Field(None, description="the file it came from (name only), for messages")

    def attribution(self) -> str:
        if self.kind == "user":
            return f"user document ({self.file_name or self.doc_id})"
        cited = list(dict.fromkeys(f"{s.short_name()} {s.year}" if s.year else s.short_name() for s in self.sources))
        return f"dermassist guideline summary ({'; '.join(cited)})" if cited else "dermassist guideline summary"

    def url(self) -> str | None:
        return next((s.url for s in self.sources if s.url), None)


class Chunk(BaseModel):
    id: str
    doc_id: str
    doc_title: str
    section: str
    text: str = Field(description="'<doc title> — <section>' then the section text: what is embedded and shown")
    conditions: list[str] = Field(default_factory=list)
    kind: DocKind = "user"
    source: str
    url: str | None = None


def slugify(text: str) -> str:
    slug = re.sub(r"[^a-z0-9]+", "-", text.lower()).strip("-")
    return slug or "section"


def parse_markdown(text: str, file_name: str, *, kind: DocKind, require_front_matter: bool) -> GuidelineDoc:
    """Front matter (YAML between ``---`` lines) plus Markdown body -> a validated ``GuidelineDoc``."""
    stem = file_name.rsplit(".", 1)[0]
    meta: dict[str, Any] = {}
    body = text
    lines = text.lstrip("\ufeff").splitlines()
    if lines and lines[0].strip() == "---":
        end = next((i for i in range(1, len(lines)) if lines[i].strip() == "---"), None)
        if end is None:
            raise RetrievalError(f"{file_name}: the front matter starts with '---' but is never closed.")
        try:
            loaded = yaml.safe_load("\n".join(lines[1:end])) or {}
        except yaml.YAMLError as err:
            raise RetrievalError(f"{file_name}: the front matter is not valid YAML ({_first_line(err)}).") from None
        if not isinstance(loaded, dict):
            raise RetrievalError(f"{file_name}: the front matter must be a YAML mapping of fields.")
        meta = loaded
        body = "\n".join(lines[end + 1 :])
    elif require_front_matter:
        raise RetrievalError(f"{file_name}: a guideline document must start with YAML front matter ('---').")
    meta.setdefault("doc_id", slugify(stem).replace("-", "_"))
    if not meta.get("title"):
        heading = next((ln[2:].strip() for ln in body.splitlines() if ln.startswith("# ")), None)
        meta["title"] = heading or stem.replace("_", " ").replace("-", " ").strip() or stem
    if not body.strip():
        raise RetrievalError(f"{file_name}: the document has no text.")
    try:
        return GuidelineDoc(**meta, body=body, kind=kind, file_name=file_name)
    except ValidationError as err:
        raise RetrievalError(f"{file_name}: invalid front matter: {first_error(err, root='front matter')}.") from None
    except TypeError:
        raise RetrievalError(f"{file_name}: the front matter has a field dermassist does not understand.") from None


def split_sections(body: str) -> list[tuple[str, str]]:
    """``(heading, text)`` per ``##`` section; text before the first ``##`` (minus the ``#`` title) is 'Overview'."""
    sections: list[tuple[str, list[str]]] = [("Overview", [])]
    for line in body.splitlines():
        if line.startswith("## "):
            sections.append((line[3:].strip() or "Section", []))
        elif line.startswith("# ") and len(sections) == 1 and not any(s.strip() for s in sections[0][1]):
            continue  # the document title
        else:
            sections[-1][1].append(line)
    return [(heading, "\n".join(lines).strip()) for heading, lines in sections if "\n".join(lines).strip()]


def split_text(text: str, limit: int = MAX_CHUNK_CHARS) -> list[str]:
    """Pack paragraphs (then sentences, then words) greedily into parts of at most ``limit`` characters."""
    pieces: list[str] = []
    for para in re.split(r"\n\s*\n", text):
        para = para.strip()
        if len(para) <= limit:
            pieces.append(para)
            continue
        for sentence in re.split(r"(?<=[.!?])\s+", para):
            while len(sentence) > limit:
                cut = sentence.rfind(" ", 0, limit)
                cut = cut if cut > 0 else limit
                pieces.append(sentence[:cut].strip())
                sentence = sentence[cut:].strip()
            pieces.append(sentence)
    parts: list[str] = []
    for piece in filter(None, pieces):
        if parts and len(parts[-1]) + 2 + len(piece) <= limit:
            parts[-1] = f"{parts[-1]}\n\n{piece}"
        else:
            parts.append(piece)
    return parts


def chunk_document(doc: GuidelineDoc, limit: int = MAX_CHUNK_CHARS) -> list[Chunk]:
    used: set[str] = set()
    chunks: list[Chunk] = []
    for heading, text in split_sections(doc.body):
        base = _unique(slugify(heading), used)
        for i, part in enumerate(split_text(text, limit), start=1):
            slug = base if i == 1 else _unique(f"{base}-{i}", used)
            chunks.append(
                Chunk(
                    id=f"{doc.doc_id}#{slug}",
                    doc_id=doc.doc_id,
                    doc_title=doc.title,
                    section=heading,
                    text=f"{doc.title} — {heading}\n\n{part}",
                    conditions=doc.conditions,
                    kind=doc.kind,
                    source=doc.attribution(),
                    url=doc.url(),
                )
            )
    return chunks


def check_unique_doc_ids(docs: list[GuidelineDoc]) -> None:
    """Two documents with one doc id would overwrite each other's chunks in the store: refuse, naming both."""
    seen: dict[str, str] = {}
    for doc in docs:
        if doc.doc_id in seen:
            raise RetrievalError(
                f"{doc.file_name} and {seen[doc.doc_id]} would both be stored as '{doc.doc_id}'; doc ids must be "
                "unique: rename one of them."
            )
        seen[doc.doc_id] = doc.file_name or doc.doc_id


def chunk_documents(docs: list[GuidelineDoc]) -> list[Chunk]:
    check_unique_doc_ids(docs)
    return [chunk for doc in docs for chunk in chunk_document(doc)]


def packaged_files() -> list[tuple[DocKind, str, Traversable]]:
    """``(kind, 'conditions/psoriasis.md', file)`` for every packaged guideline file, in a stable order."""
    root = resources.files("rag") / "corpus"
    found: list[tuple[DocKind, str, Traversable]] = []
    for kind, folder in PACKAGED_FOLDERS:
        directory = root / folder
        if directory.is_dir():
            files = sorted((f for f in directory.iterdir() if f.name.endswith(".md")), key=lambda f: f.name)
            found.extend((kind, f"{folder}/{f.name}", f) for f in files)
    return found


def load_packaged_corpus() -> list[GuidelineDoc]:
    docs = []
    for kind, rel, file in packaged_files():
        doc = parse_markdown(file.read_text(encoding="utf-8"), rel, kind=kind, require_front_matter=True)
        stem = file.name[: -len(".md")]
        if doc.doc_id != stem:
            raise RetrievalError(f"{rel}: doc_id '{doc.doc_id}' must equal the file name '{stem}'.")
        docs.append(doc)
    if not docs:
        raise RetrievalError("The packaged guideline corpus is empty; reinstall dermassist.")
    return docs


def corpus_version() -> str:
    """Short sha256 over the packaged files' names and contents: changes whenever any guideline text does."""
    digest = hashlib.sha256()
    for _, rel, file in packaged_files():
        digest.update(rel.encode() + b"\0" + file.read_bytes() + b"\0")
    return digest.hexdigest()[:12]


def _unique(slug: str, used: set[str]) -> str:
    candidate, n = slug, 2
    while candidate in used:
        candidate, n = f"{slug}-{n}", n + 1
    used.add(candidate)
    return candidate


def _first_line(err: Exception) -> str:
    return str(err).strip().splitlines()[0] if str(err).strip() else type(err).__name__
