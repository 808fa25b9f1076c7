"""In-process Hugging Face transformers backend (CPU or GPU), optional PEFT LoRA adapters, xgrammar JSON decoding.

The JSON grammar is compiled compact (no free whitespace) exactly as vLLM does with ``disable_any_whitespace``,
so greedy output here and from vLLM is token-for-token the same for the same prompt. Grammars come from a
process-wide compiler warmed in the background (``assistant.backends.grammar``). torch's thread count is set
from ``threads`` (default: the cores the process may really use), not left to torch's count of the machine.

``generate_batch`` pads on the left and runs one ``generate`` per group of requests that share generation settings
and adapter (at most ``max_batch_size`` conversations each), with one grammar per row.
"""

from __future__ import annotations

import threading
from collections.abc import Sequence

from assistant.backends.base import BackendConfig, GenerationOutcome, GenerationRequest, GenerationResult
from assistant.backends.common import context_length_error, first_line, torch_dtype, usable_cores
from assistant.core.errors import BackendError, ConfigError, DermassistError, GenerationCancelled
from assistant.core.messages import to_hf_messages


class TransformersBackend:
    name = "transformers"

    def __init__(self, config: BackendConfig) -> None:
        import torch
        from transformers import AutoModelForImageTextToText, AutoProcessor

        config.check_adapter_folders()
        self.config = config
        torch.set_num_threads(config.threads or usable_cores())
        on_gpu = config.device in ("auto", "cuda") and torch.cuda.is_available()
        self._device = "cuda" if on_gpu else "cpu"
        try:
            self.processor = AutoProcessor.from_pretrained(config.model)
        except OSError as exc:
            raise ConfigError(f"cannot load model {config.model!r}: {first_line(exc)}") from None
        if not hasattr(self.processor, "image_processor"):
            raise ConfigError(
                f"{config.model!r} has no image processor (is torchvision importable? run ./install.sh)"
            )
        kwargs: dict = {"dtype": torch_dtype(config.dtype, on_gpu=on_gpu)}
        if config.quantization != "none":
            from transformers import BitsAndBytesConfig

            kwargs["quantization_config"] = BitsAndBytesConfig(
                load_in_4bit=config.quantization == "4bit", load_in_8bit=config.quantization == "8bit")
        try:
            model = AutoModelForImageTextToText.from_pretrained(config.model, **kwargs)
        except OSError as exc:
            raise ConfigError(f"cannot load model {config.model!r}: {first_line(exc)}") from None
        if config.quantization == "none":
            model = model.to(self._device)
        self.model = self._attach_adapters(model, config.adapters)
        self.model.eval()
        self._lock = threading.Lock()  # generate() mutates the active adapter; one request at a time

    @staticmethod
    def _attach_adapters(model, adapters: dict[str, str]):
        if not adapters:
            return model
        from peft import PeftModel

        items = list(adapters.items())
        name, path = items[0]
        peft_model = PeftModel.from_pretrained(model, path, adapter_name=name)
        for name, path in items[1:]:
            peft_model.load_adapter(path, adapter_name=name)
        return peft_model

    def _grammars(self):
        from assistant.backends.grammar import grammars_for

        return grammars_for(self.config.model, self.processor.tokenizer, self.model.config.get_text_config().vocab_size)

    def warm_up(self, json_schema: dict) -> None:
        self._grammars().warm_up(json_schema)

    def _logits_processor(self, schema: dict):
        import xgrammar as xgr

        return xgr.contrib.hf.LogitsProcessor(self._grammars().compile(schema))  # stateful: one per generate()

    def generate(self, request: GenerationRequest) -> GenerationResult:
        import torch

        self.config.check_adapter(request.adapter)
        inputs = self.processor.apply_chat_template(
            to_hf_messages(request.messages), add_generation_prompt=True, tokenize=True, return_dict=True,
            return_tensors="pt").to(self._device)
        prompt_len = inputs["input_ids"].shape[1]
        if prompt_len >= self.config.max_model_len:  # the caller's to fix, as vLLM refuses it: not an engine fault
            raise context_length_error(self.config.max_model_len)
        max_new_tokens = min(request.max_new_tokens, self.config.max_model_len - prompt_len)
        gen_kwargs: dict = {"max_new_tokens": max_new_tokens, "do_sample": request.temperature > 0}
        if request.temperature > 0:
            gen_kwargs.update(temperature=request.temperature, top_p=request.top_p)
        if request.json_schema is not None:
            gen_kwargs["logits_processor"] = [self._logits_processor(request.json_schema)]
        if request.cancel is not None:
            gen_kwargs["stopping_criteria"] = _stop_when_set(request.cancel)
        with self._lock, torch.inference_mode():
            _raise_if_cancelled(request.cancel)  # it may have been set while this request waited for the lock
            torch.manual_seed(request.seed)
            output = self._run_generate(inputs, gen_kwargs, request.adapter)
        new_tokens = output[0, prompt_len:]
        _raise_if_cancelled(request.cancel, len(new_tokens))
        text = self.processor.tokenizer.decode(new_tokens, skip_special_tokens=True)
        finish = "length" if len(new_tokens) >= max_new_tokens else "stop"
        return GenerationResult(text=text, model=self.config.model, adapter=request.adapter,
                                prompt_tokens=prompt_len, completion_tokens=len(new_tokens), finish_reason=finish)

    def _run_generate(self, inputs, gen_kwargs: dict, adapter: str | None):
        """``generate`` with ``adapter`` active (none: the base model, adapters disabled). The caller holds the lock."""
        try:
            if self.config.adapters and adapter is None:
                with self.model.disable_adapter():
                    return self.model.generate(**inputs, **gen_kwargs)
            if adapter is not None:
                self.model.set_adapter(adapter)
            return self.model.generate(**inputs, **gen_kwargs)
        except RuntimeError as exc:
            raise BackendError(f"generation failed in the transformers backend: {first_line(exc)}") from None

    def generate_batch(self, requests: Sequence[GenerationRequest]) -> list[GenerationOutcome]:
        outcomes: list[GenerationOutcome | None] = [None] * len(requests)
        groups: dict[tuple, list[int]] = {}
        for i, request in enumerate(requests):
            try:
                self.config.check_adapter(request.adapter)
            except DermassistError as exc:
                outcomes[i] = exc
                continue
            key = (request.adapter, request.max_new_tokens, request.temperature, request.top_p, request.seed,
                   request.json_schema is None)
            groups.setdefault(key, []).append(i)
        size = self.config.max_batch_size
        for indices in groups.values():
            for start in range(0, len(indices), size):
                chunk = indices[start:start + size]
                try:
                    results = self._generate_padded([requests[i] for i in chunk])
                except DermassistError as exc:
                    results = [exc] * len(chunk)
                for i, result in zip(chunk, results, strict=True):
                    outcomes[i] = result
        return [o for o in outcomes if o is not None]

    def _generate_padded(self, requests: list[GenerationRequest]) -> list[GenerationOutcome]:
        """One left-padded ``generate`` for requests with the same settings and adapter; row i is request i."""
        import torch

        first = requests[0]
        inputs = self.processor.apply_chat_template(
            [to_hf_messages(r.messages) for r in requests], add_generation_prompt=True, tokenize=True,
            return_dict=True, return_tensors="pt", processor_kwargs={"padding": True, "padding_side": "left"},
        ).to(self._device)
        gen_kwargs: dict = {"max_new_tokens": first.max_new_tokens, "do_sample": first.temperature > 0}
        if first.temperature > 0:
            gen_kwargs.update(temperature=first.temperature, top_p=first.top_p)
        if first.json_schema is not None:
            gen_kwargs["logits_processor"] = [self._batch_logits_processor([r.json_schema or {} for r in requests])]
        cancels = [r.cancel for r in requests]
        if any(c is not None for c in cancels):
            gen_kwargs["stopping_criteria"] = [_cancelled_rows(cancels)]
        prompt_len = inputs["input_ids"].shape[1]
        with self._lock, torch.inference_mode():
            torch.manual_seed(first.seed)
            output = self._run_generate(inputs, gen_kwargs, first.adapter)
        eos = set(self._eos_ids())
        results: list[GenerationOutcome] = []
        for row, request in enumerate(requests):
            if request.cancel is not None and request.cancel.is_set():
                results.append(GenerationCancelled("the request was cancelled before generation finished"))
                continue
            new_tokens = output[row, prompt_len:].tolist()
            # Rows that finished early are padded to the longest row: keep up to and including the first EOS.
            end = next((i + 1 for i, token in enumerate(new_tokens) if token in eos), len(new_tokens))
            new_tokens = new_tokens[:end]
            text = self.processor.tokenizer.decode(new_tokens, skip_special_tokens=True)
            finish = "length" if len(new_tokens) >= request.max_new_tokens else "stop"
            results.append(GenerationResult(
                text=text, model=self.config.model, adapter=request.adapter,
                prompt_tokens=int(inputs["attention_mask"][row].sum()), completion_tokens=len(new_tokens),
                finish_reason=finish))
        return results

    def _batch_logits_processor(self, schemas: list[dict]):
        """One grammar per row (reports cite different retrieved passages, so their schemas differ)."""
        import xgrammar as xgr

        return xgr.contrib.hf.LogitsProcessor([self._grammars().compile(schema) for schema in schemas])

    def _eos_ids(self) -> list[int]:
        eos = self.model.generation_config.eos_token_id
        return [eos] if isinstance(eos, int) else list(eos or [])

    def close(self) -> None:
        self.model = None


def _cancelled_rows(events: list[threading.Event | None]):
    """A stopping criterion that ends the rows whose caller withdrew (their outcome is ``GenerationCancelled``)."""
    import torch
    from transformers import StoppingCriteria

    class CancelledRows(StoppingCriteria):
        def __call__(self, input_ids, scores, **kwargs):
            return torch.tensor([e is not None and e.is_set() for e in events], dtype=torch.bool,
                                device=input_ids.device)

    return CancelledRows()


def _stop_when_set(cancel: threading.Event):
    """A stopping criterion that ends ``generate`` at the next token once ``cancel`` is set (a client left)."""
    import torch
    from transformers import StoppingCriteria, StoppingCriteriaList

    class StopWhenSet(StoppingCriteria):
        def __call__(self, input_ids, scores, **kwargs):
            return torch.full((input_ids.shape[0],), cancel.is_set(), dtype=torch.bool, device=input_ids.device)

    return StoppingCriteriaList([StopWhenSet()])


def _raise_if_cancelled(cancel: threading.Event | None, generated: int = 0) -> None:
    if cancel is not None and cancel.is_set():
        raise GenerationCancelled(f"generation was cancelled after {generated} new tokens")
