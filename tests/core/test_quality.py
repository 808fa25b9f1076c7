"""The image-quality gate on generated photos: sharp vs defocused, under/over-exposed, and every skin tone.

The fairness property is the point: a good photo is never flagged at any Fitzpatrick type (I-VI) or Monk tone
(1-10), and a bad one is flagged at every tone. Photos are rendered by ``support.skin`` (texture and lesion in
linear light, then defocus, sensor noise and 8-bit sRGB), as PNG and as JPEG, and go through the real intake.
"""

from __future__ import annotations

import numpy as np
import pytest
from PIL import Image, ImageDraw

from assistant.core.intake import load_image
from assistant.core.quality import QualityThresholds, assess_image, assess_images, measure
from eval.synthetic import CLASSES, SKIN_LAB, draw_lesion
from support.skin import all_tones, jpeg, png, skin_photo

TONES = all_tones()
TONE_IDS = [name for name, _ in TONES]
ENCODERS = {"png": png, "jpeg": jpeg}


def _intake(img: Image.Image, encoding: str = "png", label: str = "image 1"):
    return load_image(ENCODERS[encoding](img), label=label)


def _checks(img: Image.Image, encoding: str = "png", modality: str = "clinical") -> list[str]:
    return [f.check for f in assess_image(_intake(img, encoding), modality)]


@pytest.mark.parametrize("encoding", ENCODERS)
@pytest.mark.parametrize("tone", [rgb for _, rgb in TONES], ids=TONE_IDS)
def test_a_good_photo_is_never_flagged_at_any_skin_tone(tone, encoding):
    assert _checks(skin_photo(tone), encoding) == []


@pytest.mark.parametrize("encoding", ENCODERS)
@pytest.mark.parametrize("tone", [rgb for _, rgb in TONES], ids=TONE_IDS)
def test_a_defocused_photo_is_flagged_blurred_at_every_skin_tone(tone, encoding):
    assert _checks(skin_photo(tone, blur=2.5), encoding) == ["blur"]


def test_sharpness_does_not_depend_on_skin_tone():
    """The same scene scores within 25 % at every tone (a plain Laplacian differs ~20x between Monk 1 and 10),
    and the sharpest blurred photo stays well below the softest sharp one."""
    sharp = [measure(_intake(skin_photo(rgb))).sharpness for _, rgb in TONES]
    blurred = [measure(_intake(skin_photo(rgb, blur=2.0))).sharpness for _, rgb in TONES]
    assert max(sharp) / min(sharp) < 1.25
    threshold = QualityThresholds().sharpness
    assert max(blurred) < threshold / 1.5 and min(sharp) > threshold * 2


@pytest.mark.parametrize("tone", [rgb for _, rgb in TONES], ids=TONE_IDS)
def test_under_and_over_exposure_are_flagged_at_every_skin_tone(tone):
    assert _checks(skin_photo(tone, exposure=0.003)) == ["underexposed"]
    assert _checks(skin_photo(tone, exposure=80.0)) == ["overexposed"]


@pytest.mark.parametrize("fitzpatrick", list(SKIN_LAB))
def test_skin_is_recognised_on_every_synthetic_lesion_and_fitzpatrick_type(fitzpatrick):
    """The eval's synthetic set (every class on every type, as its JPEGs): never 'no skin', never 'too far'."""
    rng = np.random.default_rng(7)
    for dx in CLASSES:
        image = load_image(jpeg(draw_lesion(dx, fitzpatrick, rng), 92), label="image 1")
        assert measure(image).skin_fraction > 0.9, dx
        checks = {f.check for f in assess_image(image)}
        assert not checks & {"no_skin", "too_far"}, (dx, checks)


@pytest.mark.parametrize("colour", [(40, 80, 200), (60, 160, 70), (128, 128, 128)], ids=["blue", "green", "grey"])
def test_a_photo_without_skin_is_flagged(colour):
    rng = np.random.default_rng(1)
    img = Image.new("RGB", (300, 300), colour)
    ImageDraw.Draw(img).rectangle((60, 60, 160, 160), fill=(20, 20, 20))
    noisy = np.clip(np.asarray(img, dtype=float) + rng.normal(0, 3, (300, 300, 3)), 0, 255).astype(np.uint8)
    assert _checks(Image.fromarray(noisy)) == ["no_skin"]


def test_skin_far_away_in_a_large_scene_is_too_far_for_a_clinical_photo_only():
    scene = Image.new("RGB", (600, 450), (70, 90, 120))  # a blue-grey room
    scene.paste(skin_photo(TONES[3][1], size=(150, 110)), (220, 170))  # the patient, small in the frame
    assert _checks(scene) == ["too_far"]
    assert _checks(scene, modality="dermoscopy") == []  # a contact device is never too far
    assert _checks(scene, modality="histopathology") == []  # a slide is not a photo of skin


def test_low_resolution_names_the_image_and_its_size():
    image = _intake(skin_photo(TONES[0][1], size=(150, 120)), label="image 2")
    findings = assess_image(image)
    assert [f.check for f in findings] == ["low_resolution"]
    assert findings[0].message.startswith("image 2 is only 150x120 pixels")


def test_findings_are_one_sentence_per_problem_in_image_order():
    good = _intake(skin_photo(TONES[8][1]), label="image 1")
    blurred = _intake(skin_photo(TONES[12][1], blur=3), label="image 2")
    dark = _intake(skin_photo(TONES[15][1], exposure=0.003), label="image 3")
    findings = assess_images([good, blurred, dark])
    assert [(f.image, f.check) for f in findings] == [("image 2", "blur"), ("image 3", "underexposed")]
    for finding in findings:
        assert finding.image in finding.message and finding.message.endswith(".")
        assert finding.message.count(". ") == 0  # one sentence a clinician can act on
