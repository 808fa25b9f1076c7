"""Example cases to try in one click, drawn by the project's own lesion generator (``eval.synthetic``): no photo
of a real patient ships with dermassist, and nothing is downloaded. One example is deliberately out of focus, to
show the retake advice."""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

import numpy as np
from PIL import ImageFilter

from assistant.core.case import ClinicalContext, Modality, Symptoms
from eval.synthetic import draw_lesion


@dataclass(frozen=True)
class Example:
    title: str
    images: tuple[Path, ...]
    modality: Modality
    context: ClinicalContext


_CASES = (
    ("Changing mole on the back", "mel", "II", 0.0, 11,
     ClinicalContext(age=58, sex="male", fitzpatrick="II", body_site="upper back", duration="3 months",
                     symptoms=Symptoms(change=True, growth=True), history="sunburns as a child",
                     question="Could this be a melanoma?")),
    ("Pearly nodule on the face, skin type V", "bcc", "V", 0.0, 12,
     ClinicalContext(age=67, sex="female", fitzpatrick="V", body_site="left cheek", duration="8 months",
                     symptoms=Symptoms(bleeding=True), question="What should happen next?")),
    ("Out-of-focus photo (shows the retake advice)", "nv", "III", 3.0, 13,
     ClinicalContext(age=34, sex="female", fitzpatrick="III", body_site="forearm", duration="years")),
)


def write_examples(folder: Path) -> list[Example]:
    """Draw the example photos into ``folder`` (PNG, deterministic) and return the cases."""
    folder.mkdir(parents=True, exist_ok=True)
    examples = []
    for i, (title, dx, fitzpatrick, blur, seed, context) in enumerate(_CASES, 1):
        image = draw_lesion(dx, fitzpatrick, np.random.default_rng(seed))
        if blur:
            image = image.filter(ImageFilter.GaussianBlur(blur))
        path = folder / f"example-{i}.png"
        image.save(path, format="PNG")
        examples.append(Example(title, (path,), Modality.clinical, context))
    return examples
