"""Pieces shared by the in-process backends (transformers, vLLM)."""

from __future__ import annotations

from assistant.backends.base import ChatMessage, ImagePart, TextPart


def hf_messages(messages: tuple[ChatMessage, ...], *, image_key: str = "image") -> list[dict]:
    """Messages in the HF/vLLM chat format; images stay PIL objects (never written to disk)."""
    out = []
    for message in messages:
        content = []
        for part in message.parts:
            if isinstance(part, ImagePart):
                content.append({"type": image_key, image_key: part.image.image})
            elif isinstance(part, TextPart):
                content.append({"type": "text", "text": part.text})
        out.append({"role": message.role, "content": content})
    return out


def torch_dtype(name: str, *, on_gpu: bool):
    import torch

    if name == "auto":
        return torch.bfloat16 if on_gpu else torch.float32
    return {"float32": torch.float32, "bfloat16": torch.bfloat16, "float16": torch.float16}[name]


def first_line(exc: BaseException) -> str:
    """The first line of an engine's error: enough for a user, without stack or internals."""
    return (str(exc).strip().splitlines() or [type(exc).__name__])[0][:200]
