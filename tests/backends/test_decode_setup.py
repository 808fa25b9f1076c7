"""Decode set-up: one grammar compiler per tokenizer and process, warmed by the pipeline, reused across calls;
torch's thread count chosen from the cores the process may use (or the config)."""

from __future__ import annotations

import json
import os
import subprocess
import sys

import pytest
import torch

from assistant.backends.base import BackendConfig, GenerationRequest, WarmsUp
from assistant.backends.common import usable_cores
from assistant.backends.grammar import grammars_for
from assistant.backends.registry import create_backend
from assistant.core.messages import ChatMessage
from assistant.core.report import draft_json_schema
from assistant.pipeline.pipeline import WARM_UP_CITATION, ReportPipeline
from support.paths import REPO


@pytest.fixture(scope="module")
def backend(tiny_model):
    configured = torch.get_num_threads()
    backend = create_backend(BackendConfig(backend="transformers", model=str(tiny_model), threads=1))
    yield backend
    backend.close()
    torch.set_num_threads(configured)


def test_threads_come_from_the_config_or_the_usable_cores(backend, tiny_model):
    assert torch.get_num_threads() == 1  # threads=1 in the config
    other = create_backend(BackendConfig(backend="transformers", model=str(tiny_model)))
    try:
        assert torch.get_num_threads() == usable_cores()
    finally:
        other.close()
        torch.set_num_threads(1)


def test_usable_cores_follow_the_cpu_affinity():
    script = "import os; os.sched_setaffinity(0, {0}); from assistant.backends.common import usable_cores; " \
             "print(usable_cores())"
    out = subprocess.run([sys.executable, "-c", script], capture_output=True, text=True, timeout=120, check=True,
                         env={**os.environ, "PYTHONPATH": str(REPO)}).stdout
    assert out.strip() == "1" and 1 <= usable_cores() <= (os.cpu_count() or 1)


def test_the_pipeline_warms_one_shared_compiler_and_calls_reuse_it(backend, tiny_model):
    assert isinstance(backend, WarmsUp)
    ReportPipeline(backend)  # constrained decoding on: warms the compiler with a placeholder citation id
    grammars = grammars_for(str(tiny_model), backend.processor.tokenizer,
                            backend.model.config.get_text_config().vocab_size)
    assert grammars is backend._grammars()  # one per tokenizer and process, shared by every backend
    grammars._warming.result(timeout=600)
    compiler = grammars._compiler
    warmed = compiler.get_cache_size_bytes()
    assert warmed > 0  # the warm-up compiled the report schema's rules
    schema = draft_json_schema(["psoriasis#red-flags", "melanoma#overview"])
    messages = (ChatMessage.text("user", "Describe the lesion."),)
    first = backend.generate(GenerationRequest(messages=messages, json_schema=schema, max_new_tokens=24))
    after_first = compiler.get_cache_size_bytes()
    backend.generate(GenerationRequest(messages=messages, json_schema=schema, max_new_tokens=24))
    assert compiler.get_cache_size_bytes() == after_first  # the same schema again: compiled once, reused
    assert first.completion_tokens > 0 and first.text.startswith("{")
    assert json.dumps(draft_json_schema([WARM_UP_CITATION])) != json.dumps(schema)
