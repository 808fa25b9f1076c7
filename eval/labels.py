"""The one seam between the eval harness and the condition ontology.

Every label and every prediction goes through :func:`to_condition_id`; umbrella matching and malignancy go
through :func:`matches` and :func:`is_malignant`. They use ``rag.ontology.default_ontology()`` when it is
importable; until then a small fallback built from ``docs/kb-spec.md`` (canonical ids, the three umbrella groups
and the malignant ids) keeps the harness working. Dataset codes (HAM10000's ``mel``, PAD-UFES-20's ``NEV``…) are
mapped by each task's ``label_map`` *before* this function is called.
"""

from __future__ import annotations

import re
from functools import lru_cache

_MALIGNANT = frozenset(
    ["melanoma", "basal_cell_carcinoma", "squamous_cell_carcinoma", "scc_in_situ", "actinic_keratosis", "keratoacanthoma", "merkel_cell_carcinoma", "kaposi_sarcoma", "mycosis_fungoides", "dermatofibrosarcoma_protuberans", "actinic_keratosis_intraepithelial_carcinoma"]
)
_UMBRELLAS = {
    "benign_keratosis": {"seborrheic_keratosis", "solar_lentigo", "lichen_planus_like_keratosis"},
    "vascular_lesion": {
        "cherry_angioma", "pyogenic_granuloma", "infantile_hemangioma", "angiokeratoma", "port_wine_stain",
        "spider_angioma",
    },
    "actinic_keratosis_intraepithelial_carcinoma": {"actinic_keratosis", "scc_in_situ"},
}
_OTHER_IDS = ["atypical_nevus", "melanocytic_nevus", "lentigo", "dermatofibroma", "skin_tag", "epidermoid_cyst", "lipoma", "sebaceous_hyperplasia", "dermatosis_papulosa_nigra", "milia", "neurofibroma", "keloid", "scar", "acne", "rosacea", "atopic_dermatitis", "allergic_contact_dermatitis", "irritant_contact_dermatitis", "seborrheic_dermatitis", "stasis_dermatitis", "dyshidrotic_eczema", "nummular_eczema", "lichen_simplex_chronicus", "psoriasis", "lichen_planus", "pityriasis_rosea", "urticaria", "angioedema", "hidradenitis_suppurativa", "perioral_dermatitis", "granuloma_annulare", "bullous_pemphigoid", "pemphigus_vulgaris", "erythema_multiforme", "sjs_ten", "drug_eruption", "dress_syndrome", "cutaneous_lupus", "dermatomyositis", "cutaneous_vasculitis", "erythema_nodosum", "pyoderma_gangrenosum", "lichen_sclerosus", "prurigo_nodularis", "intertrigo", "keratosis_pilaris", "insect_bite_reaction", "tinea", "tinea_capitis", "onychomycosis", "tinea_versicolor", "cutaneous_candidiasis", "impetigo", "cellulitis", "folliculitis", "skin_abscess", "necrotizing_fasciitis", "staphylococcal_scalded_skin_syndrome", "scabies", "head_lice", "molluscum_contagiosum", "verruca_vulgaris", "herpes_simplex", "herpes_zoster", "varicella", "measles", "mpox", "cowpox", "hand_foot_mouth_disease", "eczema_herpeticum", "meningococcal_purpura", "erythema_migrans", "secondary_syphilis", "scarlet_fever", "vitiligo", "melasma", "post_inflammatory_hyperpigmentation", "pityriasis_alba", "acanthosis_nigricans", "alopecia_areata", "androgenetic_alopecia", "telogen_effluvium", "venous_leg_ulcer"]
_FALLBACK_IDS = frozenset(_OTHER_IDS) | _MALIGNANT | set(_UMBRELLAS) | set().union(*_UMBRELLAS.values())
_FALLBACK_SYNONYMS = {
    "nevus": "melanocytic_nevus", "naevus": "melanocytic_nevus", "mole": "melanocytic_nevus",
    "melanocytic_naevus": "melanocytic_nevus", "bcc": "basal_cell_carcinoma", "scc": "squamous_cell_carcinoma",
    "seborrhoeic_keratosis": "seborrheic_keratosis", "eczema": "atopic_dermatitis",
}


@lru_cache(maxsize=1)
def _ontology():
    try:
        from rag.ontology import default_ontology
    except ImportError:
        return None
    return default_ontology()


def ontology_available() -> bool:
    return _ontology() is not None


def _slug(text: str) -> str:
    return re.sub(r"[^a-z0-9]+", "_", text.strip().lower()).strip("_")


def to_condition_id(text: str | None) -> str | None:
    """Map a dataset label or a model's condition name to a canonical condition id, or None when unmapped."""
    if text is None or not str(text).strip():
        return None
    onto = _ontology()
    if onto is not None:
        return onto.normalize(str(text))
    slug = _slug(str(text))
    if slug in _FALLBACK_IDS:
        return slug
    return _FALLBACK_SYNONYMS.get(slug)


def is_known_id(condition_id: str) -> bool:
    onto = _ontology()
    if onto is not None:
        try:
            return onto.get(condition_id) is not None
        except KeyError:
            return False
    return condition_id in _FALLBACK_IDS


def matches(pred_id: str | None, label_id: str | None) -> bool:
    """True when the prediction is the label or a child of the label's umbrella group (e.g. SK counts for bkl)."""
    if pred_id is None or label_id is None:
        return False
    onto = _ontology()
    if onto is not None:
        return bool(onto.matches(pred_id, label_id))
    return pred_id == label_id or pred_id in _UMBRELLAS.get(label_id, ())


def is_malignant(condition_id: str | None) -> bool | None:
    """Malignant or premalignant per the ontology; None when the id is unknown."""
    if condition_id is None:
        return None
    onto = _ontology()
    if onto is not None:
        try:
            return bool(onto.is_malignant(condition_id))
        except KeyError:
            return None
    if condition_id not in _FALLBACK_IDS:
        return None
    return condition_id in _MALIGNANT


def condition_name(condition_id: str) -> str:
    """The ontology's display name of a condition id (the id in words when the ontology is not available)."""
    onto = _ontology()
    if onto is not None:
        try:
            return onto.get(condition_id).name
        except KeyError:
            pass
    return condition_id.replace("_", " ")
