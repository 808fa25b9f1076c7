"""Strict closed-VQA answer extraction on tricky strings: never a first-substring guess, never a random pick."""

from __future__ import annotations

import pytest

from eval.metrics.vqa import extract_answer, is_correct

CHOICES = ["Melanoma", "Melanocytic nevus", "Melanoma in situ", "Seborrheic keratosis"]


@pytest.mark.parametrize("text,expected", [
    ("B", "Melanocytic nevus"),
    ("(c)", "Melanoma in situ"),
    ("**C**", "Melanoma in situ"),
    ("D.", "Seborrheic keratosis"),
    ("Answer: D", "Seborrheic keratosis"),
    ("The answer is B) Melanocytic nevus", "Melanocytic nevus"),
    ("Final answer: (a)\nBecause of the blue-white veil.", "Melanoma"),
    ("B) Melanocytic nevus, given the symmetry", "Melanocytic nevus"),
    ("melanocytic NEVUS", "Melanocytic nevus"),
    ("It is melanoma in situ.", "Melanoma in situ"),  # 'melanoma' inside the longer option does not count
    ("It is not melanoma, it is seborrheic keratosis", "Seborrheic keratosis"),  # negated mention ignored
    ("I would rule out melanoma; seborrheic keratosis.", "Seborrheic keratosis"),
    ("Melanoma in situ or melanoma", None),  # two options: ambiguous
    ("Melanoma or seborrheic keratosis", None),
    ("A large pigmented lesion", None),  # article 'A', not option A
    ("E", None),  # no option E
    ("", None),
    ("I cannot tell from this image.", None),
    ("Answer: none of the above", None),
])
def test_multiple_choice(text, expected):
    assert extract_answer(text, CHOICES) == expected


@pytest.mark.parametrize("text,expected", [
    ("Yes", "yes"), ("yes.", "yes"), ("No", "no"), ("no, it is symmetric", "no"), ("YES - clearly", "yes"),
    ("Answer: no", "no"), ("The answer is yes because of the ulcer", "yes"),
    ("No doubt this is benign", None),  # 'No' is not the answer here
    ("Not sure", None), ("nope", None), ("Yes or no?", None), ("Maybe", None), ("yesterday it bled", None),
    ("  ", None),
])
def test_yes_no(text, expected):
    assert extract_answer(text, []) == expected


def test_is_correct_accepts_letter_gold_and_rejects_unparsed():
    assert is_correct("Melanocytic nevus", "B", CHOICES)
    assert is_correct("Melanocytic nevus", "melanocytic nevus", CHOICES)
    assert not is_correct(None, "B", CHOICES)
    assert is_correct("yes", "Yes.", [])
    assert not is_correct("no", "yes", [])
