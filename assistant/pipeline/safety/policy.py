"""``SafetyPolicy``: the ``safety:`` section of a run config (assistant/configs/*.yaml, ``DERMASSIST_SAFETY__*``)."""

from __future__ import annotations

from pydantic import BaseModel, ConfigDict, Field


class SafetyPolicy(BaseModel):
    """The safety layer's tunable numbers. The rules themselves are data (``assistant/pipeline/safety/rules``)."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    malignant_threshold: float = Field(
        0.10, ge=0.0, le=1.0,
        description="a malignant (or unrecognised, or malignancy-named) condition at least this likely in the "
                    "differential escalates triage; as the diagnosis it always does")
    emergency_threshold: float = Field(
        0.0, ge=0.0, lt=1.0,
        description="an emergency condition more likely than this anywhere in the differential escalates to emergency")
    negation_window: int = Field(5, ge=1, le=12, description="words a negation or uncertainty trigger reaches")
    min_fuzzy_length: int = Field(5, ge=4, le=12, description="words this long tolerate a typo (two from 9 letters)")
    likelihood_sum_tolerance: float = Field(
        0.25, gt=0.0, le=1.0, description="differential likelihoods further than this from 1 are a recorded limitation")
    diagnosis_rank_limit: int = Field(
        2, ge=1, le=5, description="a diagnosis ranked below this in its own differential is a recorded limitation")
