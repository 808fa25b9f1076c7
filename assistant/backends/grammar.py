"""xgrammar set-up for in-process constrained decoding: one compiler per tokenizer per process, warmed early.

Why: compiling the report's decoding schema the first time in a process is expensive — about 1 s of CPU with the
tiny model's 1k-token vocabulary and about 35 s with a 30k-token one (measured here) — because xgrammar works out
a token mask for every state of the schema's bounded string patterns. A compiler that has compiled it once
compiles the next one (other citation ids) in about 0.1 s: xgrammar keeps those per-rule masks in the compiler.
So every backend of a process shares one compiler per tokenizer, and ``warm_up`` compiles a schema of the same
shape in a background thread (xgrammar releases the GIL) as soon as the pipeline exists, so the first report
finds the compiler warm instead of paying for it.

Across processes xgrammar can only serialise one exact compiled grammar (``CompiledGrammar.serialize_json``), not
the compiler's rule cache; our grammar changes with every case (the citation ids are an enum of the retrieved
passages), and a serialised report grammar is 16.8 MB for the 1k vocabulary and takes longer to write and read
back than a warm compile. So nothing is cached on disk.
"""

from __future__ import annotations

import contextlib
import json
import threading
from concurrent.futures import Future, ThreadPoolExecutor
from typing import Any

from assistant.backends.common import usable_cores

_SHARED: dict[tuple[str, int], Grammars] = {}
_SHARED_LOCK = threading.Lock()


class Grammars:
    """Compiles JSON schemas for one tokenizer; compiled grammars are cached by the compiler (by schema)."""

    def __init__(self, tokenizer: Any, vocab_size: int) -> None:
        import xgrammar as xgr

        info = xgr.TokenizerInfo.from_huggingface(tokenizer, vocab_size=vocab_size)
        self._compiler = xgr.GrammarCompiler(info, max_threads=usable_cores())  # default 8: oversubscribes
        self._warming: Future | None = None

    def compile(self, schema: dict):
        """The compiled grammar for ``schema``, compact JSON (as vLLM's ``disable_any_whitespace``)."""
        warming = self._warming
        if warming is not None:
            warming.result()  # a second compile beside the warm-up would redo the work the warm-up is caching
        return self._compiler.compile_json_schema(json.dumps(schema), any_whitespace=False, separators=(",", ":"))

    def warm_up(self, schema: dict) -> None:
        """Compile ``schema`` in the background (once per process and tokenizer); ``compile`` waits for it."""
        if self._warming is None:
            pool = ThreadPoolExecutor(max_workers=1, thread_name_prefix="dermassist-grammar")
            self._warming = pool.submit(self.compile_quietly, schema)
            pool.shutdown(wait=False)

    def compile_quietly(self, schema: dict) -> None:
        with contextlib.suppress(Exception):  # the real request compiles again and reports the error there
            self._compiler.compile_json_schema(json.dumps(schema), any_whitespace=False, separators=(",", ":"))


def grammars_for(model: str, tokenizer: Any, vocab_size: int) -> Grammars:
    """The process's ``Grammars`` for this model's tokenizer (created on first use)."""
    key = (model, vocab_size)
    with _SHARED_LOCK:
        if key not in _SHARED:
            _SHARED[key] = Grammars(tokenizer, vocab_size)
        return _SHARED[key]
