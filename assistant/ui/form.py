"""The clinical-context form, generated from the ``ClinicalContext`` model itself.

A field added to ``ClinicalContext`` (the structured emergency fields, a Monk skin tone, …) appears in the form
with its own label and help text, and the form's values go back through the same pydantic validation as every
other surface's. The form knows types, not fields: numbers become text boxes (a Gradio number box shows and sends
0 when left empty, and an unset age must stay unset), enums and literals become choices, bounded text becomes a
text box, a group of yes/unknown flags (``Symptoms``, or top-level ``bool | None`` fields) becomes one checkbox
group where ticked means *yes* and unticked means *not reported* (``None``, never ``False``). Skin-tone scales take
their choices from ``assistant.core.skintone`` so every surface accepts the same values.

Nothing here imports Gradio: ``assistant.ui.app`` turns each ``FieldSpec`` into a component.
"""

from __future__ import annotations

import enum
import types
import typing
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any, Literal

from pydantic import BaseModel, ValidationError
from pydantic.fields import FieldInfo

from assistant.core.case import ClinicalContext
from assistant.core.errors import CaseError, first_error
from assistant.core.skintone import FITZPATRICK, MONK

Kind = Literal["number", "choice", "text", "long_text", "list", "flags"]
LONG_TEXT = 200  # characters: above this a field gets a multi-line box
TOP_LEVEL_FLAGS = "signs"  # the one group that collects top-level yes/unknown fields
SCALES = {"fitzpatrick": FITZPATRICK, "monk": MONK}  # a str/int field named after a scale offers its values


@dataclass(frozen=True)
class FieldSpec:
    """One form control: ``name`` is the context field (or ``TOP_LEVEL_FLAGS``); ``flags`` are (field, label)."""

    name: str
    label: str
    kind: Kind
    info: str | None = None
    choices: tuple[str, ...] = ()
    flags: tuple[tuple[str, str], ...] = ()
    integer: bool = False
    minimum: float | None = None
    maximum: float | None = None
    max_length: int | None = None

    def fields(self) -> tuple[str, ...]:
        """The ``ClinicalContext`` fields this control fills."""
        return tuple(name for name, _ in self.flags) if self.name == TOP_LEVEL_FLAGS else (self.name,)


def context_form(model: type[BaseModel] = ClinicalContext, *, skip: Sequence[str] = ("question",)) -> list[FieldSpec]:
    """The controls for every field of ``model`` except ``skip`` (the free-text question has its own box)."""
    specs: list[FieldSpec] = []
    top_flags: list[tuple[str, str]] = []
    for name, info in model.model_fields.items():
        if name in skip:
            continue
        inner = _unwrap(info.annotation)
        if inner is bool:
            top_flags.append((name, _flag_label(name, info)))
            continue
        specs.append(_spec(name, info, inner))
    if top_flags:
        specs.append(FieldSpec(TOP_LEVEL_FLAGS, "Warning signs present", "flags", flags=tuple(top_flags),
                               info="tick what applies; unticked means not reported"))
    return specs


def context_from_values(specs: Sequence[FieldSpec], values: Sequence[Any], question: str | None = None,
                        model: type[BaseModel] = ClinicalContext) -> Any:
    """The validated context from the form's values (in ``specs`` order); a ``CaseError`` names the field."""
    data: dict[str, Any] = {}
    for spec, value in zip(specs, values, strict=True):
        data.update(_value(spec, value))
    if question and question.strip():
        data["question"] = question.strip()
    try:
        return model.model_validate(data)
    except ValidationError as exc:
        raise CaseError(f"invalid clinical context: {first_error(exc, root='context')}") from None
    except ValueError as exc:
        raise CaseError(f"invalid clinical context: {exc}") from None


def form_values(specs: Sequence[FieldSpec], context: BaseModel) -> list[Any]:
    """The form's values showing ``context`` (to fill the form from an example case)."""
    out: list[Any] = []
    for spec in specs:
        if spec.kind == "flags" and spec.name == TOP_LEVEL_FLAGS:
            out.append([name for name, _ in spec.flags if getattr(context, name) is True])
        elif spec.kind == "flags":
            nested = getattr(context, spec.name)
            out.append([name for name, _ in spec.flags if getattr(nested, name) is True])
        else:
            value = getattr(context, spec.name)
            if isinstance(value, enum.Enum):
                value = value.value
            elif isinstance(value, list):
                value = ", ".join(str(v) for v in value)
            out.append(value)
    return out


def _spec(name: str, info: FieldInfo, inner: Any) -> FieldSpec:
    label = _label(name, info)
    help_text = info.description
    scale = next((values for key, values in SCALES.items() if key in name.lower()), None)
    if scale is not None:
        return FieldSpec(name, label, "choice", help_text, choices=scale)
    if isinstance(inner, type) and issubclass(inner, enum.Enum):
        return FieldSpec(name, label, "choice", help_text, choices=tuple(str(m.value) for m in inner))
    if typing.get_origin(inner) is Literal:
        return FieldSpec(name, label, "choice", help_text, choices=tuple(str(v) for v in typing.get_args(inner)))
    if isinstance(inner, type) and issubclass(inner, BaseModel):
        flags = tuple((n, _flag_label(n, f)) for n, f in inner.model_fields.items() if _unwrap(f.annotation) is bool)
        return FieldSpec(name, label, "flags", help_text or "tick what applies; unticked means not reported",
                         flags=flags)
    if inner in (int, float):
        low, high = _bounds(info)
        return FieldSpec(name, label, "number", help_text, integer=inner is int, minimum=low, maximum=high)
    if typing.get_origin(inner) is list:
        return FieldSpec(name, label, "list", help_text or "comma-separated", max_length=_max_length(info))
    max_length = _max_length(info)
    kind: Kind = "long_text" if max_length is not None and max_length > LONG_TEXT else "text"
    return FieldSpec(name, label, kind, help_text, max_length=max_length)


def _value(spec: FieldSpec, value: Any) -> dict[str, Any]:
    if spec.kind == "flags":
        ticked = {str(v) for v in (value or [])}
        flags = {name: True for name, _ in spec.flags if name in ticked}
        return flags if spec.name == TOP_LEVEL_FLAGS else {spec.name: flags}
    if value is None or (isinstance(value, str) and not value.strip()):
        return {}
    if spec.kind == "number":
        try:
            number = float(str(value).strip().replace(",", "."))
        except ValueError:
            raise CaseError(f"invalid clinical context: {spec.name}: {spec.label.lower()} must be a number") from None
        return {spec.name: int(number) if spec.integer and number.is_integer() else number}
    if spec.kind == "list":
        return {spec.name: [item.strip() for item in str(value).split(",") if item.strip()]}
    return {spec.name: value.strip() if isinstance(value, str) else value}


def _unwrap(annotation: Any) -> Any:
    """``X | None`` → ``X``; anything else as it is."""
    if typing.get_origin(annotation) in (typing.Union, types.UnionType):
        args = [a for a in typing.get_args(annotation) if a is not type(None)]
        if len(args) == 1:
            return args[0]
    return annotation


def _label(name: str, info: FieldInfo) -> str:
    return info.title or name.replace("_", " ").capitalize()


def _flag_label(name: str, info: FieldInfo) -> str:
    """A tick box says what it means: "Change (change in colour, shape or size)"."""
    label = _label(name, info)
    return f"{label} ({info.description})" if info.description else label


def _bounds(info: FieldInfo) -> tuple[float | None, float | None]:
    low = high = None
    for item in info.metadata:
        low = getattr(item, "ge", None) if getattr(item, "ge", None) is not None else low
        high = getattr(item, "le", None) if getattr(item, "le", None) is not None else high
    return low, high


def _max_length(info: FieldInfo) -> int | None:
    return next((item.max_length for item in info.metadata if getattr(item, "max_length", None) is not None), None)
