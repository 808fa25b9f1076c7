"""Pieces shared by the in-process backends (transformers, vLLM)."""

from __future__ import annotations


def torch_dtype(name: str, *, on_gpu: bool):
    import torch

    if name == "auto":
        return torch.bfloat16 if on_gpu else torch.float32
    return {"float32": torch.float32, "bfloat16": torch.bfloat16, "float16": torch.float16}[name]


def first_line(exc: BaseException) -> str:
    """The first line of an engine's error: enough for a user, without stack or internals."""
    return (str(exc).strip().splitlines() or [type(exc).__name__])[0][:200]
