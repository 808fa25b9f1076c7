"""One small generic registry: a name maps to an object, or to a lazy ``"package.module:attr"`` target.

Backends, dataset adapters, metrics and fine-tune recipes each keep one ``Registry``. Lazy targets keep imports
cheap (a transformers user never imports vLLM) and avoid registration by import side effect: the table is data.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator, Mapping
from importlib import import_module
from typing import Generic, TypeVar

from assistant.core.errors import ConfigError

T = TypeVar("T")


class Registry(Generic[T]):
    """Named entries of one kind; ``kind`` names them in errors ("unknown backend 'x'; choose from …")."""

    def __init__(self, kind: str, entries: Mapping[str, T | str] | None = None, *,
                 error: Callable[[str], Exception] = ConfigError) -> None:
        self.kind = kind
        self._entries: dict[str, T | str] = dict(entries or {})
        self._error = error

    def register(self, name: str, entry: T | str) -> None:
        """Add or replace ``name``: an object, or ``"package.module:attr"`` imported on first use."""
        if isinstance(entry, str) and ":" not in entry:
            raise ValueError(f"{self.kind} target must be 'package.module:attr', got {entry!r}")
        self._entries[name] = entry

    def names(self) -> list[str]:
        return sorted(self._entries)

    def __contains__(self, name: object) -> bool:
        return name in self._entries

    def __iter__(self) -> Iterator[str]:
        return iter(self.names())

    def get(self, name: str) -> T:
        """The entry for ``name`` (a lazy target is imported once and cached); a clear error for unknown names."""
        try:
            entry = self._entries[name]
        except KeyError:
            raise self._error(f"unknown {self.kind} {name!r}; choose from {', '.join(self.names())}") from None
        if isinstance(entry, str):
            module, _, attr = entry.partition(":")
            entry = getattr(import_module(module), attr)
            self._entries[name] = entry
        return entry
