"""User documents for ``dermassist kb add`` / ``kb build --docs``: Markdown, plain text, HTML and PDF.

One loader per file suffix in ``LOADERS``; adding a type is one function and one registry entry. Every problem
(unknown type, text that is not UTF-8, a damaged or text-less PDF, an empty folder, a missing path) is a
``RetrievalError`` that names the file. ``load_documents`` loads everything or raises: callers write nothing
unless every file loaded.
"""

from __future__ import annotations

import logging
import re
from collections.abc import Callable, Iterable
from pathlib import Path

from bs4 import BeautifulSoup, NavigableString
from pypdf import PdfReader

from assistant.core.errors import RetrievalError
from rag.corpus import GuidelineDoc, check_unique_doc_ids, parse_markdown, slugify

Loader = Callable[[Path], GuidelineDoc]
_BLOCK_TAGS = ["p", "div", "section", "article", "main", "ul", "ol", "table", "tr", "br", "blockquote", "pre"]
_BREAK = "\x00"


def _read_utf8(path: Path) -> str:
    try:
        return path.read_bytes().decode("utf-8-sig")
    except UnicodeDecodeError:
        raise RetrievalError(f"{path} is not UTF-8 text; save it as UTF-8 and add it again.") from None
    except OSError as err:
        raise RetrievalError(f"{path} could not be read ({err.strerror or 'I/O error'}).") from None


def _doc_id(path: Path) -> str:
    return slugify(path.stem).replace("-", "_")


def _title(path: Path) -> str:
    return re.sub(r"[_-]+", " ", path.stem).strip() or path.name


def _plain_doc(path: Path, title: str | None, body: str) -> GuidelineDoc:
    if not body.strip():
        raise RetrievalError(f"{path} has no text to add.")
    return GuidelineDoc(title=title or _title(path), doc_id=_doc_id(path), body=body, kind="user", file_name=path.name)


def load_markdown(path: Path) -> GuidelineDoc:
    """Front matter optional; ``doc_id`` defaults to the file-name slug, ``title`` to the first ``#`` heading."""
    text = _read_utf8(path)
    if not text.strip():
        raise RetrievalError(f"{path} has no text to add.")
    return parse_markdown(text, path.name, kind="user", require_front_matter=False)


def load_text(path: Path) -> GuidelineDoc:
    return _plain_doc(path, None, _read_utf8(path))


def load_html(path: Path) -> GuidelineDoc:
    """Visible text with headings kept as Markdown headings (so sections still become chunks)."""
    soup = BeautifulSoup(_read_utf8(path), "html.parser")
    h1 = soup.find("h1")
    title = ((soup.title.get_text(" ", strip=True) if soup.title else "")
             or (h1.get_text(" ", strip=True) if h1 else None))
    for tag in soup(["script", "style", "noscript", "template", "head", "nav", "footer"]):
        tag.decompose()
    for tag in soup.find_all(["h1", "h2", "h3", "h4", "h5", "h6"]):
        level = min(int(tag.name[1]), 3)
        tag.replace_with(NavigableString(f"{_BREAK}{'#' * level} {tag.get_text(' ', strip=True)}{_BREAK}"))
    for tag in soup.find_all("li"):
        tag.insert_before(NavigableString(f"{_BREAK}- "))
    for tag in soup.find_all(_BLOCK_TAGS):
        tag.insert_before(NavigableString(_BREAK))
        tag.insert_after(NavigableString(_BREAK))
    text = re.sub(r"[ \t\r\n\f\v]+", " ", soup.get_text())
    blocks = [block.strip() for block in text.split(_BREAK)]
    return _plain_doc(path, title, "\n\n".join(b for b in blocks if b and b != "-"))


def load_pdf(path: Path) -> GuidelineDoc:
    """Text of every page, pages joined by blank lines; scanned (image-only) PDFs have no text and are refused."""
    pypdf_logger = logging.getLogger("pypdf")
    level = pypdf_logger.level
    pypdf_logger.setLevel(logging.ERROR)
    try:
        reader = PdfReader(path)
        if reader.is_encrypted and not reader.decrypt(""):
            raise RetrievalError(f"{path} is a password-protected PDF; save an unprotected copy and add that.")
        pages = [page.extract_text() or "" for page in reader.pages]
        meta_title = (reader.metadata.title if reader.metadata else None) or None
    except RetrievalError:
        raise
    except Exception:
        raise RetrievalError(f"{path} could not be read as a PDF; the file may be damaged.") from None
    finally:
        pypdf_logger.setLevel(level)
    body = "\n\n".join(p.strip() for p in pages if p.strip())
    if not body:
        raise RetrievalError(f"{path} has no extractable text (a scanned PDF needs OCR before it can be added).")
    return _plain_doc(path, str(meta_title).strip() if meta_title else None, body)


LOADERS: dict[str, Loader] = {
    ".md": load_markdown,
    ".markdown": load_markdown,
    ".txt": load_text,
    ".html": load_html,
    ".htm": load_html,
    ".pdf": load_pdf,
}


def supported_suffixes() -> str:
    return ", ".join(sorted(LOADERS))


def load_document(path: Path) -> GuidelineDoc:
    loader = LOADERS.get(path.suffix.lower())
    if loader is None:
        raise RetrievalError(f"{path}: unsupported file type '{path.suffix or '(none)'}'; use {supported_suffixes()}.")
    return loader(path)


def expand_paths(paths: Iterable[Path | str]) -> list[Path]:
    """Files as given plus every non-hidden file under given folders (sorted); missing paths and empty folders fail."""
    files: list[Path] = []
    for raw in paths:
        path = Path(raw).expanduser()
        if path.is_dir():
            found = sorted(
                p for p in path.rglob("*")
                if p.is_file() and not any(part.startswith(".") for part in p.relative_to(path).parts)
            )
            if not found:
                raise RetrievalError(f"{path} is an empty folder; there are no documents to add.")
            files.extend(found)
        elif path.is_file():
            files.append(path)
        else:
            raise RetrievalError(f"{path} does not exist.")
    if not files:
        raise RetrievalError("No documents were given.")
    return files


def load_documents(paths: Iterable[Path | str]) -> list[GuidelineDoc]:
    """Load every file (folders recursively) or raise on the first bad one; nothing is returned partially."""
    docs = [load_document(path) for path in expand_paths(paths)]
    check_unique_doc_ids(docs)
    return docs
