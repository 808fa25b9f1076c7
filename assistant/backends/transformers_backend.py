"""In-process Hugging Face transformers backend (CPU or GPU), optional PEFT LoRA adapters, xgrammar JSON decoding.

The JSON grammar is compiled compact (no free whitespace) exactly as vLLM does with ``disable_any_whitespace``,
so greedy output here and from vLLM is token-for-token the same for the same prompt.
"""

from __future__ import annotations

import json
import threading

from assistant.backends.base import BackendConfig, GenerationRequest, GenerationResult
from assistant.backends.common import context_length_error, first_line, torch_dtype
from assistant.core.errors import BackendError, ConfigError, GenerationCancelled
from assistant.core.messages import to_hf_messages


class TransformersBackend:
    name = "transformers"

    def __init__(self, config: BackendConfig) -> None:
        import torch
        from transformers import AutoModelForImageTextToText, AutoProcessor

        config.check_adapter_folders()
        self.config = config
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
        self._tokenizer_info = None

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

    def _logits_processor(self, schema: dict):
        import xgrammar as xgr

        if self._tokenizer_info is None:
            vocab_size = self.model.config.get_text_config().vocab_size
            self._tokenizer_info = xgr.TokenizerInfo.from_huggingface(self.processor.tokenizer,
                                                                      vocab_size=vocab_size)
            self._compiler = xgr.GrammarCompiler(self._tokenizer_info)
        compiled = self._compiler.compile_json_schema(json.dumps(schema), any_whitespace=False,
                                                      separators=(",", ":"))
        return xgr.contrib.hf.LogitsProcessor(compiled)  # stateful: a new one per generate() call

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
            try:
                if self.config.adapters and request.adapter is None:
                    with self.model.disable_adapter():
                        output = self.model.generate(**inputs, **gen_kwargs)
                else:
                    if request.adapter is not None:
                        self.model.set_adapter(request.adapter)
                    output = self.model.generate(**inputs, **gen_kwargs)
            except RuntimeError as exc:
                raise BackendError(f"generation failed in the transformers backend: {first_line(exc)}") from None
        new_tokens = output[0, prompt_len:]
        _raise_if_cancelled(request.cancel, len(new_tokens))
        text = self.processor.tokenizer.decode(new_tokens, skip_special_tokens=True)
        finish = "length" if len(new_tokens) >= max_new_tokens else "stop"
        return GenerationResult(text=text, model=self.config.model, adapter=request.adapter,
                                prompt_tokens=prompt_len, completion_tokens=len(new_tokens), finish_reason=finish)

    def close(self) -> None:
        self.model = None


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
