"""python -m bench all [--quick] [--write]      (or: dermassist bench all ...)

Runs the benchmarks side by side and prints one Markdown table: every measurement with what it is compared with
(A, measured alternately in the same run), the ratio, its target and whether the target is met — and if not, by
how much and why. ``--write`` puts the table into docs/benchmarks.md (between its bench:results markers): the
numbers in the docs come from here, never typed by hand.

Sections (``python -m bench SECTION ...`` runs one): retrieval, startup, report, decoding, batch, endpoint.
``--quick`` shrinks every section (1k and 10k chunk stores, fewer rounds) to check the harness in minutes.
"""

from __future__ import annotations

import argparse
import os
import sys

from bench.common import REPO, Results, machine, markdown, write_into

SECTIONS = ("retrieval", "startup", "report", "decoding", "batch", "endpoint")
DOC = REPO / "docs" / "benchmarks.md"


def run_section(name: str, results: Results, args: argparse.Namespace) -> None:
    quick = args.quick
    if name == "retrieval":
        from bench import kb_bench

        sizes = tuple(int(s) for s in args.sizes.split(",")) if args.sizes else (
            (1_000, 10_000) if quick else kb_bench.SIZES)
        kb_bench.run(results, sizes=sizes, n_queries=40 if quick else 100, rounds=2 if quick else 3)
    elif name == "startup":
        from bench import startup_bench

        startup_bench.run(results, rounds=2 if quick else 5)
    elif name == "report":
        from bench import report_bench

        report_bench.run(results, backends=args.backends, model=args.model, rounds=2 if quick else 8)
    elif name == "decoding":
        from bench import decode_bench

        decode_bench.run(results, backends=args.backends, model=args.model, rounds=4 if quick else 8,
                         max_new_tokens=64 if quick else 256, first_rounds=1 if quick else 3)
    elif name == "batch":
        batch(results, args)
    elif name == "endpoint":
        from bench import endpoint_bench

        endpoint_bench.run(results, model=args.model, requests=8 if quick else 32,
                           report_requests=4 if quick else 8, rounds=2 if quick else 4)


def batch(results: Results, args: argparse.Namespace) -> None:
    """Batched vs one case at a time, in-process transformers and vLLM: bench/batch_bench.py."""
    from bench import batch_bench

    batch_bench.run(results, model=args.model, quick=args.quick)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m bench", description=__doc__.splitlines()[0])
    parser.add_argument("sections", nargs="+", choices=("all", *SECTIONS), help="what to run")
    parser.add_argument("--quick", action="store_true", help="small sizes and few rounds: check the harness")
    parser.add_argument("--write", action="store_true", help="write the table into docs/benchmarks.md")
    parser.add_argument("--model", help="model path or hub id (default: the tiny random demo model)")
    parser.add_argument("--backends", default="transformers,vllm", help="in-process backends to compare")
    parser.add_argument("--sizes", help="retrieval store sizes, e.g. 1000,10000,100000")
    args = parser.parse_args(argv)
    args.backends = tuple(b for b in args.backends.split(",") if b)
    os.environ.setdefault("HF_HUB_OFFLINE", "1")
    os.environ.setdefault("TOKENIZERS_PARALLELISM", "false")
    os.environ.setdefault("VLLM_CPU_KVCACHE_SPACE", "1")
    os.environ.setdefault("VLLM_CONFIGURE_LOGGING", "0")
    os.environ.setdefault("ANONYMIZED_TELEMETRY", "False")
    sections = SECTIONS if "all" in args.sections else tuple(dict.fromkeys(args.sections))
    results = Results(started=machine())
    command = "python -m bench " + " ".join(argv if argv is not None else sys.argv[1:])
    failed = 0
    for i, name in enumerate(sections):
        print(f"[bench] {name}...", file=sys.stderr, flush=True)
        try:
            run_section(name, results, args)
        except (Exception, SystemExit) as exc:  # one broken section must not lose the others' numbers
            failed += 1
            results.notes.append(f"{name}: not measured — the section failed: {str(exc).splitlines()[0][:300]}")
            print(f"[bench] {name} failed: {exc}", file=sys.stderr, flush=True)
        if args.write:  # after every section: a run stopped part-way still leaves what it measured, said so
            left = sections[i + 1:]
            pending = [f"Sections not run yet when this was written: {', '.join(left)}."] if left else []
            write_into(DOC, markdown(Results(results.rows, results.notes + pending, results.started), command))
    print(markdown(results, command))
    if args.write:
        print(f"[bench] written into {DOC}", file=sys.stderr)
    return 1 if failed else 0


if __name__ == "__main__":
    raise SystemExit(main())
