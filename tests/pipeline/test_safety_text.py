"""How the safety layer reads text: negation and uncertainty (NegEx windows) in five languages, typo tolerance that
does not mistake real words, durations, ages, sizes and temperatures, and tolerant condition-name matching."""

from __future__ import annotations

import pytest

from assistant.core.ontology import default_ontology
from assistant.pipeline.safety import SafetyPolicy, engine_for
from assistant.pipeline.safety.measures import age_years, duration_days, size_mm, temperature_c
from assistant.pipeline.safety.text import clauses, detect_languages

ENGINE = engine_for(default_ontology(), SafetyPolicy())


def statuses(text: str, concept: str) -> set[str]:
    return {h.status for h in ENGINE._read_text(text, "history") if h.concept == concept}


@pytest.mark.parametrize("text, concept, expected", [
    # English
    ("fever since yesterday", "fever", {"present"}),
    ("no fever", "fever", {"negated"}),
    ("denies fever, chills or rash", "fever", {"negated"}),
    ("she denies fever, chills or bleeding", "bleeding", {"negated"}),  # a list trigger runs over commas
    ("no fever, bleeding since Monday", "bleeding", {"present"}),       # a plain one stops at the comma
    ("no fever but bleeding", "bleeding", {"present"}),                 # "but" ends the scope
    ("no fever and bleeding", "bleeding", {"present"}),                 # conservative: "and" ends it too
    ("not itchy", "itch", {"negated"}),
    ("fever: no", "fever", {"negated"}),
    ("fever ruled out", "fever", {"negated"}),
    ("possible fever", "fever", {"uncertain"}),
    ("?necrotising", "necrosis", {"uncertain"}),
    ("not only itchy but bleeding", "itch", {"present"}),               # a pseudo-trigger negates nothing
    ("a sore that won't heal", "non_healing", {"present"}),             # the "not" belongs to the term
    ("it will not heal, bleeds", "bleeding", {"present"}),              # ... and negates nothing after it
    # Spanish, French, Portuguese, German
    ("sin fiebre", "fever", {"negated"}),
    ("no tiene fiebre pero sangra", "bleeding", {"present"}),
    ("niega fiebre, escalofríos o sangrado", "bleeding", {"negated"}),
    ("pas de fièvre", "fever", {"negated"}),
    ("fièvre : non", "fever", {"negated"}),
    ("suspicion de nécrose", "necrosis", {"uncertain"}),
    ("sem febre", "fever", {"negated"}),
    ("febre alta desde ontem", "fever", {"present"}),
    ("kein Fieber", "fever", {"negated"}),
    ("Fieber: nein", "fever", {"negated"}),
    ("Verdacht auf Nekrose", "necrosis", {"uncertain"}),
    ("heilt nicht ab, blutet", "bleeding", {"present"}),
    # French elision: "s'étend", "l'œil", "n'a pas" read as the lexicon writes them ("s étend", "l œil", "n a pas")
    ("la rougeur s'étend très vite", "rapid_spread", {"present"}),
    ("douleur à l’œil", "eye_symptoms", {"present"}),
    ("une bande noire sur l'ongle", "nail_band", {"present"}),
    ("il n'a pas de fièvre", "fever", {"negated"}),
    ("it doesn't blanch", "non_blanching", {"present"}),
])
def test_negation_and_uncertainty(text, concept, expected):
    assert statuses(text, concept) == expected


@pytest.mark.parametrize("text, concept", [
    ("feverr and chils", "fever"),
    ("blistres on the arms", "blistering"),
    ("it bleeidng a lot", "bleeding"),
    ("mouht ulcres", "mucosal"),
    ("dificultad para respirrar", "airway"),
    ("la peau se décole", "skin_detachment"),
    ("Schüttelfrots", "fever"),
    ("the mole has groen", "growth"),
    ("petechia on the legs", "non_blanching"),
])
def test_typos_in_longer_words_are_tolerated(text, concept):
    assert statuses(text, concept) == {"present"}


@pytest.mark.parametrize("text, concept", [
    ("there are fewer spots now", "fever"),  # a real word one edit away is not corrected
    ("I never had this before", "fever"),
    ("it glows after a shower", "growth"),
    ("fevr", "fever"),                       # four letters: too short to correct safely
    ("he eats a high fiber diet", "fever"),  # English text: not read as German "Fieber"
    ("the plain film was normal", "ulcer"),  # not French "plaie"
])
def test_lookalike_words_are_not_corrected(text, concept):
    assert statuses(text, concept) == set()


def test_clauses_and_language_detection():
    assert clauses("Fever 38.5 C. No rash; itchy!") == [["fever", "38", "5", "c"], ["no", "rash"], ["itchy"]]
    stopwords = ENGINE.stopwords
    assert detect_languages(["hace", "dos", "semanas", "con", "fiebre"], stopwords) == {"es"}
    assert detect_languages(["seit", "drei", "wochen", "mit", "fieber"], stopwords) == {"de"}
    assert detect_languages(["fievre"], stopwords) == {"en", "es", "fr", "pt", "de"}  # no clue: all


@pytest.mark.parametrize("text, days", [
    ("6 months", 180), ("seit 3 Wochen", 21), ("hace 2 meses", 60), ("depuis deux semaines", 14),
    ("há 3 meses", 90), ("6/52", 42), ("3/12", 90), ("2-3 weeks", 21), ("for a few weeks", 21),
    ("since childhood", 3650), ("seit Jahren", 3650), ("3 días", 3), ("un mois", 30), ("no duration here", None),
])
def test_durations(text, days):
    assert duration_days(text) == days


@pytest.mark.parametrize("text, age", [
    ("A 60-year-old man", 60), ("mujer de 45 años", 45), ("Patient, 72 ans", 72), ("78 Jahre alt", 78),
    ("homem de 50 anos", 50), ("âgée de 81 ans", 81), ("5yo boy", 5),
    ("hace más de 2 años", None), ("depuis 2 ans", None), ("sore for 3 years", None), ("de 2 semanas", None),
])
def test_ages_only_from_explicit_phrasings(text, age):
    assert age_years(text) == age


def test_sizes_and_temperatures():
    assert size_mm("8 x 6 mm lesion") == 8 and size_mm("1.5 cm") == 15 and size_mm("large") is None
    assert temperature_c("fever 39.2 C") == 39.2 and temperature_c("38,5 °C") == 38.5
    assert temperature_c("temperatura de 39") == 39 and temperature_c("36 cm wide") is None


@pytest.mark.parametrize("name, ids, malignant_word", [
    ("Suspected melanoma", ("melanoma",), True),
    ("Possible melanoma", ("melanoma",), True),
    ("Acne vulgaris (mild comedonal)", ("acne",), False),
    ("Seborrheic keratosis, irritated", ("seborrheic_keratosis",), False),
    ("Nodular BCC", ("basal_cell_carcinoma",), False),
    ("SCC in situ", ("scc_in_situ",), False),
    ("Melanoma vs atypical naevus", ("atypical_nevus", "melanoma"), True),
    ("Melanomma", ("melanoma",), True),
    ("Melanome malin", ("melanoma",), True),
    ("Hautkrebs", (), True),
    ("Basalzellkarzinom", (), True),
    ("Carcinoma espinocelular", (), True),
    ("Non-malignant naevus", ("melanocytic_nevus",), False),
    ("Melanocytic nevus", ("melanocytic_nevus",), False),
    ("Precancerous lesion", (), False),
    ("Pseudolymphoma", ("pseudolymphoma",), False),  # in the ontology since the label-coverage entries
    ("Pityriasis amiantacea", (), False),
    ("blorfic dermatosis", (), False),
    ("Generalized pustular psoriasis, severe", ("generalised_pustular_psoriasis",), False),
    ("Bullous pemphigoid (early)", ("bullous_pemphigoid",), False),
])
def test_condition_names_are_matched_tolerantly(name, ids, malignant_word):
    match = ENGINE.conditions.match(name)
    assert match.ids == ids and bool(match.malignant_word) is malignant_word


def test_every_lexicon_phrase_is_read_as_its_concept():
    """Each word list entry, in each language, is recognised on its own (a phrase the reader cannot see would be a
    silent hole in the net)."""
    from assistant.pipeline.safety.schema import LANGUAGES, default_rule_set

    unread = []
    for name, concept in default_rule_set().lexicon.concepts.items():
        for lang in (*LANGUAGES, "any_language"):
            for phrase in getattr(concept, lang):
                if "present" not in statuses(phrase, name):
                    unread.append(f"{name}/{lang}: {phrase}")
    assert not unread, unread
