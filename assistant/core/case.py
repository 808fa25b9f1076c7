"""The case: what a clinician hands dermassist — images plus clinical context.

Validation happens here, at the boundary, with messages a clinician can act on. Images are kept as given
(path, bytes or PIL image); ``assistant.core.intake`` turns them into clean, metadata-free RGB pixels.
"""

from __future__ import annotations

from enum import StrEnum
from pathlib import Path
from typing import Annotated, Any

from PIL import Image
from pydantic import BaseModel, ConfigDict, Field, field_validator

from assistant.core.intake import IntakeImage
from assistant.core.skintone import parse_fitzpatrick, parse_monk

MAX_IMAGES_PER_CASE = 4

ImageSource = Annotated[Any, "a filesystem path, raw bytes, a PIL image or an already-clean IntakeImage"]


class Modality(StrEnum):
    clinical = "clinical"
    dermoscopy = "dermoscopy"
    histopathology = "histopathology"


class Sex(StrEnum):
    female = "female"
    male = "male"
    other = "other"
    unknown = "unknown"


class Symptoms(BaseModel):
    """Symptoms the patient reports; ``None`` means not asked / not known (different from ``False``)."""

    model_config = ConfigDict(extra="forbid")

    itch: bool | None = None
    pain: bool | None = None
    bleeding: bool | None = None
    growth: bool | None = None
    change: bool | None = Field(None, description="change in colour, shape or size")

    def present(self) -> list[str]:
        return [name for name, value in self.model_dump().items() if value]

    @classmethod
    def from_names(cls, names: list[str]) -> Symptoms:
        """Build from a list such as ``["itch", "bleeding"]`` (the CLI's ``--symptoms itch,bleeding``)."""
        fields = set(cls.model_fields)
        unknown = sorted({n.strip().lower() for n in names if n.strip()} - fields)
        if unknown:
            raise ValueError(f"unknown symptom(s) {', '.join(unknown)}; choose from {', '.join(sorted(fields))}")
        return cls(**{n.strip().lower(): True for n in names if n.strip()})


# The structured red-flag questions of a case: the safety layer reads them, the CLI has a --flag/--no-flag for each,
# the endpoint takes them as ``metadata`` and the UI builds its form from them. ``None`` = not asked / not known.
EMERGENCY_FIELDS: tuple[str, ...] = (
    "fever", "mucosal_involvement", "immunosuppressed", "non_blanching_rash", "rapid_spread",
    "new_medication_last_8_weeks", "pregnant", "systemically_unwell",
)


class ClinicalContext(BaseModel):
    model_config = ConfigDict(extra="forbid", str_strip_whitespace=True)

    age: int | None = Field(None, ge=0, le=120, description="age in years")
    sex: Sex = Sex.unknown
    fitzpatrick: str | None = Field(None, description="Fitzpatrick skin type I-VI")
    monk: int | None = Field(None, description="Monk skin tone 1-10 (the 10-swatch scale; either scale or both)")
    body_site: str | None = Field(None, max_length=100)
    duration: str | None = Field(None, max_length=100, description="e.g. '3 weeks', 'since childhood'")
    symptoms: Symptoms = Field(default_factory=Symptoms)
    history: str | None = Field(None, max_length=2000, description="relevant personal and family history")
    medications: list[str] = Field(default_factory=list, max_length=30)
    question: str | None = Field(None, max_length=2000)
    fever: bool | None = Field(None, description="fever, feeling feverish or shivering (measured 38 °C or above, or "
                                                 "reported)")
    mucosal_involvement: bool | None = Field(
        None, description="sores, blisters, erosions or crusts of the mouth, lips, eyes or genitals")
    immunosuppressed: bool | None = Field(
        None, description="weakened immunity: organ transplant, immunosuppressive or biologic drugs, chemotherapy, "
                          "long-term oral steroids, HIV with a low CD4 count")
    non_blanching_rash: bool | None = Field(
        None, description="spots or a rash that do not fade when pressed (glass test): petechiae or purpura")
    rapid_spread: bool | None = Field(
        None, description="the rash, redness or swelling is spreading fast (over hours to a day)")
    new_medication_last_8_weeks: bool | None = Field(
        None, description="a new medicine (prescribed, over the counter or herbal) started in the last 8 weeks")
    pregnant: bool | None = Field(None, description="currently pregnant")
    systemically_unwell: bool | None = Field(
        None, description="feels very unwell: drowsy, confused, breathless, fainting, vomiting or unable to drink")

    @field_validator("monk", mode="before")
    @classmethod
    def _monk(cls, value: Any) -> int | None:
        if value is None or str(value).strip() == "":
            return None
        parsed = parse_monk(value)
        if parsed is None or (isinstance(value, float) and not value.is_integer()):
            raise ValueError("Monk skin tone must be 1-10")
        return parsed

    def emergency_answers(self) -> list[tuple[str, bool]]:
        """The red-flag questions that were answered, in ``EMERGENCY_FIELDS`` order: ``[("fever", True), ...]``."""
        return [(name, value) for name in EMERGENCY_FIELDS if (value := getattr(self, name)) is not None]

    @field_validator("fitzpatrick", mode="before")
    @classmethod
    def _fitzpatrick(cls, value: Any) -> str | None:
        if value is None or str(value).strip() == "":
            return None
        parsed = parse_fitzpatrick(value)
        if parsed is None:
            raise ValueError("Fitzpatrick type must be I-VI (or 1-6)")
        return parsed

    @field_validator("medications", mode="before")
    @classmethod
    def _medications(cls, value: Any) -> list[str]:
        if value is None:
            return []
        if isinstance(value, str):
            return [m.strip() for m in value.split(",") if m.strip()]
        return value


class Case(BaseModel):
    """One patient encounter: 1-4 images of the same problem, how they were taken, and the context."""

    model_config = ConfigDict(arbitrary_types_allowed=True, extra="forbid")

    images: list[ImageSource] = Field(min_length=1, max_length=MAX_IMAGES_PER_CASE)
    modality: Modality = Modality.clinical
    context: ClinicalContext = Field(default_factory=ClinicalContext)

    @field_validator("images", mode="before")
    @classmethod
    def _images(cls, value: Any) -> list[Any]:
        items = value if isinstance(value, (list, tuple)) else [value]
        for i, item in enumerate(items):
            if not isinstance(item, (str, Path, bytes, bytearray, Image.Image, IntakeImage)):
                raise ValueError(
                    f"image {i + 1} must be a file path, bytes or a PIL image, not {type(item).__name__}"
                )
            if isinstance(item, (bytes, bytearray)) and not item:
                raise ValueError(f"image {i + 1} is empty (0 bytes)")
        return [Path(item) if isinstance(item, str) else item for item in items]
