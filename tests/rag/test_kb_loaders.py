"""User-document loaders: each type, and every bad input as a clear error naming the file, store unchanged."""

from __future__ import annotations

import pytest
from pypdf import PdfWriter
from typer.testing import CliRunner

from assistant.cli.kb import app
from assistant.core.errors import RetrievalError
from rag.corpus import chunk_document
from rag.loaders import LOADERS, load_document, load_documents
from support.kb import copy_store, open_store, write_text_pdf

HTML = """<!doctype html><html><head><title>Clinic wound protocol</title><style>p {color: red}</style>
<script>var tracking = 1;</script></head><body><nav>Home | About</nav>
<h1>Wound protocol</h1><p>Leg ulcers are
 measured <b>weekly</b>.</p>
<h2>Compression</h2><ul><li>Check the ankle-brachial pressure index first.</li><li>Refer if below 0.8.</li></ul>
<h2>Dressings</h2><p>Simple non-adherent dressings.</p></body></html>"""


def test_markdown_with_and_without_front_matter(tmp_path):
    plain = tmp_path / "Our Acne Pathway.md"
    plain.write_text("# Acne pathway\n\nIntro line.\n\n## Step one\nTopical treatment first.\n")
    doc = load_document(plain)
    assert (doc.doc_id, doc.title, doc.kind) == ("our_acne_pathway", "Acne pathway", "user")
    assert [c.id for c in chunk_document(doc)] == ["our_acne_pathway#overview", "our_acne_pathway#step-one"]
    assert doc.attribution() == "user document (Our Acne Pathway.md)"

    fm = tmp_path / "x.md"
    fm.write_text("---\ntitle: Local eczema guide\ndoc_id: local_eczema\nconditions: [atopic_dermatitis]\n---\n"
                  "## Emollients\nUse plenty.\n")
    doc = load_document(fm)
    assert (doc.doc_id, doc.title, doc.conditions) == ("local_eczema", "Local eczema guide", ["atopic_dermatitis"])


def test_text_file(tmp_path):
    path = tmp_path / "notes.txt"
    path.write_text("Clinic notes on scabies.\n\nTreat all household contacts on the same day.\n", encoding="utf-8")
    doc = load_document(path)
    assert doc.doc_id == "notes" and "household contacts" in doc.body
    assert [c.id for c in chunk_document(doc)] == ["notes#overview"]


def test_html_keeps_headings_and_drops_scripts(tmp_path):
    path = tmp_path / "wound.html"
    path.write_text(HTML, encoding="utf-8")
    doc = load_document(path)
    assert doc.title == "Clinic wound protocol"
    assert "tracking" not in doc.body and "color" not in doc.body and "Home | About" not in doc.body
    assert "Leg ulcers are measured weekly." in doc.body
    chunks = chunk_document(doc)
    assert [c.id for c in chunks] == ["wound#overview", "wound#compression", "wound#dressings"]
    assert "- Refer if below 0.8." in chunks[1].text


def test_pdf_pages_are_read(tmp_path):
    path = write_text_pdf(tmp_path / "nail_guide.pdf", ["Nail fungus clinic guide", "Send clippings first."])
    doc = load_document(path)
    assert doc.doc_id == "nail_guide" and "Send clippings first." in doc.body


def test_loader_registry_covers_the_documented_types():
    assert {".md", ".txt", ".html", ".pdf"} <= set(LOADERS)


def _bad_inputs(tmp_path):
    (tmp_path / "slides.docx").write_bytes(b"PK\x03\x04 not really")
    (tmp_path / "latin1.txt").write_bytes("caf\xe9 au lait spots".encode("latin-1"))
    (tmp_path / "garbage.pdf").write_bytes(b"\x00\x13garbage bytes, not a PDF at all\xff" * 20)
    blank = PdfWriter()
    blank.add_blank_page(612, 792)
    with open(tmp_path / "scanned.pdf", "wb") as fh:
        blank.write(fh)
    (tmp_path / "empty_folder").mkdir()
    (tmp_path / "empty.md").write_text("   \n")
    return {
        "slides.docx": "unsupported file type '.docx'",
        "latin1.txt": "is not UTF-8 text",
        "garbage.pdf": "could not be read as a PDF",
        "scanned.pdf": "has no extractable text",
        "empty_folder": "is an empty folder",
        "missing.md": "does not exist",
        "empty.md": "has no text",
    }


def test_bad_inputs_are_clear_errors_naming_the_file(tmp_path):
    for name, message in _bad_inputs(tmp_path).items():
        with pytest.raises(RetrievalError) as err:
            load_documents([tmp_path / name])
        assert name in str(err.value) and message in str(err.value), str(err.value)


def test_kb_add_refuses_bad_files_and_leaves_the_store_unchanged(tmp_path):
    store_dir = copy_store(tmp_path / "kb")
    before = open_store(store_dir)
    count, generation = before.count(), before.manifest.generation
    good = tmp_path / "good.md"
    good.write_text("## Local advice\nA perfectly good document.\n")
    runner = CliRunner()
    for name, message in _bad_inputs(tmp_path).items():
        # the good file comes first: nothing may be written unless every file loads
        result = runner.invoke(app, ["add", str(good), str(tmp_path / name), "--store", str(store_dir)])
        assert result.exit_code == 1, result.output
        assert result.stderr.startswith("error: ") and name in result.stderr and message in result.stderr
        assert "Traceback" not in result.output
        after = open_store(store_dir)
        assert (after.count(), after.manifest.generation) == (count, generation)

    result = runner.invoke(app, ["add", str(good), "--store", str(store_dir)])
    assert result.exit_code == 0, result.output
    assert open_store(store_dir).count() == count + 1


def test_two_files_with_the_same_id_are_refused(tmp_path):
    (tmp_path / "a").mkdir()
    (tmp_path / "b").mkdir()
    (tmp_path / "a" / "notes.md").write_text("## A\ntext\n")
    (tmp_path / "b" / "notes.txt").write_text("text\n")
    with pytest.raises(RetrievalError, match="would both be stored as 'notes'"):
        load_documents([tmp_path / "a", tmp_path / "b"])
