"""Pieces shared by the in-process backends (transformers, vLLM)."""

from __future__ import annotations

import math
import os
import re
from pathlib import Path

from assistant.core.errors import BackendError, ContextLengthError, DermassistError


def torch_dtype(name: str, *, on_gpu: bool):
    import torch

    if name == "auto":
        return torch.bfloat16 if on_gpu else torch.float32
    return {"float32": torch.float32, "bfloat16": torch.bfloat16, "float16": torch.float16}[name]


def first_line(exc: BaseException) -> str:
    """The first line of an engine's error: enough for a user, without stack or internals."""
    return (str(exc).strip().splitlines() or [type(exc).__name__])[0][:200]


def usable_cores() -> int:
    """The cores this process can really run on: its CPU affinity, capped by a cgroup v2 CPU quota (a container's
    ``--cpus``), which torch and xgrammar would otherwise ignore and oversubscribe."""
    cores = len(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else (os.cpu_count() or 1)
    quota = _cgroup_quota()
    return max(1, min(cores, math.ceil(quota)) if quota else cores)


def _cgroup_quota() -> float | None:
    """CPUs granted by the cgroup (v2 ``cpu.max`` or v1 ``cfs_quota_us``); None when unlimited or unknown."""
    try:
        quota, period = Path("/sys/fs/cgroup/cpu.max").read_text().split()[:2]
        return None if quota == "max" else int(quota) / int(period)
    except (OSError, ValueError):
        pass
    try:
        quota = int(Path("/sys/fs/cgroup/cpu/cpu.cfs_quota_us").read_text())
        period = int(Path("/sys/fs/cgroup/cpu/cpu.cfs_period_us").read_text())
        return None if quota <= 0 else quota / period
    except (OSError, ValueError):
        return None


# How engines say that a prompt does not fit: vLLM ("longer than the maximum model length of 4096"), the OpenAI
# API and vLLM's server ("This model's maximum context length is 4096 tokens").
_CONTEXT_LIMIT = re.compile(r"maximum (?:model|context) length (?:of |is )?(\d+)", re.IGNORECASE)


def context_length_error(limit: int | None) -> ContextLengthError:
    shown = f" of {limit} tokens" if limit else ""
    return ContextLengthError(f"the request does not fit in the model's context window{shown} (prompt, images and "
                              "the requested max tokens together); shorten the conversation, send fewer images or "
                              "ask for fewer tokens")


def engine_error(exc: BaseException, where: str) -> DermassistError:
    """An engine's exception as a user error: a prompt that does not fit the context is the caller's to fix
    (``ContextLengthError``, a 400 over HTTP); anything else means the engine failed (``BackendError``)."""
    line = first_line(exc)
    match = _CONTEXT_LIMIT.search(line)
    if match:
        return context_length_error(int(match[1]))
    return BackendError(f"generation failed in {where}: {line}")
