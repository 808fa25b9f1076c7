"""Pieces shared by the in-process backends (transformers, vLLM)."""

from __future__ import annotations

import math
import os
from pathlib import Path


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
