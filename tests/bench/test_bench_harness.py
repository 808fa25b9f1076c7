"""The benchmark harness itself (not its numbers): A/B rounds alternate, rows say met / missed by how much, and the
results block of a document is replaced in place."""

from __future__ import annotations

import os

import pytest

from bench.common import BEGIN, END, Results, Row, alternate, markdown, write_into


def test_rounds_alternate_the_order_of_a_and_b():
    calls: list[str] = []
    samples = alternate(4, {"a": lambda: calls.append("a") or 1.0, "b": lambda: calls.append("b") or 2.0})
    assert calls == ["a", "b", "b", "a", "a", "b", "b", "a"]
    assert samples == {"a": [1.0] * 4, "b": [2.0] * 4}


def test_rows_say_met_or_missed_by_how_much_and_why():
    assert Row("s", "p95", 18.0, "ms", target=20).status == "**met**"
    missed = Row("s", "p95", 26.5, "ms", target=20, why="Chroma's query")
    assert missed.status == "**missed** by 6.50 ms: Chroma's query"
    ratio = Row("s", "overhead", 110.0, "ms", a=100.0, target=1.05, ratio_target=True)
    assert ratio.ratio == 1.1 and ratio.status.startswith("**missed** by 0.05x")
    throughput = Row("s", "rps", 9.0, "req/s", a=10.0, target=0.95, ratio_target=True, higher_is_better=True)
    assert throughput.status.startswith("**missed** by 0.05x")
    assert Row("s", "info", 1.0, "s").status == ""


def test_the_table_goes_between_the_markers_and_nothing_else_changes(tmp_path):
    from bench.common import machine

    results = Results(started=machine())
    results.add(Row("retrieval 100k", "search p95", 12.3, "ms", a=10.0, a_label="dense", b_label="hybrid",
                    target=20))
    table = markdown(results, "python -m bench retrieval")
    assert "| retrieval 100k | search p95 | dense 10.0 ms | hybrid 12.3 ms | 1.23x | ≤ 20 ms | **met** |" in table
    assert "Load average" in table and "cores usable" in table
    doc = tmp_path / "benchmarks.md"
    doc.write_text(f"# Title\n\nintro\n\n{BEGIN}\nold table\n{END}\n\nafter\n")
    write_into(doc, table)
    text = doc.read_text()
    assert text.startswith("# Title\n\nintro\n\n") and text.endswith(f"{END}\n\nafter\n")
    assert "old table" not in text and table in text


@pytest.fixture
def environ_restored():
    """``bench`` sets defaults such as VLLM_CONFIGURE_LOGGING=0 for its own process; run in pytest's process they
    would leak into every later test's subprocesses (a vLLM that logs nothing fails tests/cli/test_stdout.py)."""
    saved = dict(os.environ)
    yield
    os.environ.clear()
    os.environ.update(saved)


def test_a_failing_section_is_a_note_and_the_table_is_still_written(tmp_path, monkeypatch, capsys, environ_restored):
    import bench.__main__ as entry

    doc = tmp_path / "benchmarks.md"
    doc.write_text(f"intro\n{BEGIN}\nold\n{END}\n")
    monkeypatch.setattr(entry, "DOC", doc)
    monkeypatch.chdir(entry.REPO)
    assert entry.main(["retrieval", "--sizes", "lots", "--write"]) == 1  # int("lots") fails inside the section
    text = doc.read_text()
    assert "- retrieval: not measured — the section failed: invalid literal" in text and "old" not in text
    assert "retrieval failed" in capsys.readouterr().err
