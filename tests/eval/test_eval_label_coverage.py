"""Every label of every supported dataset's published label set maps to a condition id (through the task's
label_map, then the ontology) — or, for a fixed label set, into the task's labels — with nothing left to chance.

The label names below are the published ones (the datasets' own files: HAM10000 metadata ``dx``, the ISIC 2019
ground-truth header, PAD-UFES-20 ``diagnostic``, the Fitzpatrick17k CSV's 114 ``label`` values, DDI's 78 ``disease``
values, SCIN's labels as its official demo notebook lists them); only their names are kept here, no data.
"""

from __future__ import annotations

import csv
import shutil

import pytest

from assistant.core.ontology import default_ontology
from eval.datasets import map_label
from eval.results import EvalResults
from eval.task import load_task
from support.evalkit import report, write_jsonl
from support.paths import EVAL_DATA

ONTO = default_ontology()

HAM10000 = ["akiec", "bcc", "bkl", "df", "mel", "nv", "vasc"]
ISIC2019 = ["MEL", "NV", "BCC", "AK", "BKL", "DF", "VASC", "SCC", "UNK"]
PAD_UFES20 = ["ACK", "BCC", "MEL", "NEV", "SCC", "SEK"]
FITZPATRICK17K = [
    "acanthosis nigricans", "acne", "acne vulgaris", "acquired autoimmune bullous diseaseherpes gestationis",
    "acrodermatitis enteropathica", "actinic keratosis", "allergic contact dermatitis", "aplasia cutis",
    "basal cell carcinoma", "basal cell carcinoma morpheiform", "becker nevus", "behcets disease",
    "calcinosis cutis", "cheilitis", "congenital nevus", "dariers disease", "dermatofibroma", "dermatomyositis",
    "disseminated actinic porokeratosis", "drug eruption", "drug induced pigmentary changes", "dyshidrotic eczema",
    "eczema", "ehlers danlos syndrome", "epidermal nevus", "epidermolysis bullosa", "erythema annulare centrifigum",
    "erythema elevatum diutinum", "erythema multiforme", "erythema nodosum", "factitial dermatitis",
    "fixed eruptions", "folliculitis", "fordyce spots", "granuloma annulare", "granuloma pyogenic",
    "hailey hailey disease", "halo nevus", "hidradenitis", "ichthyosis vulgaris", "incontinentia pigmenti",
    "juvenile xanthogranuloma", "kaposi sarcoma", "keloid", "keratosis pilaris", "langerhans cell histiocytosis",
    "lentigo maligna", "lichen amyloidosis", "lichen planus", "lichen simplex", "livedo reticularis",
    "lupus erythematosus", "lupus subacute", "lyme disease", "lymphangioma", "malignant melanoma", "melanoma",
    "milia", "mucinosis", "mucous cyst", "mycosis fungoides", "myiasis", "naevus comedonicus",
    "necrobiosis lipoidica", "nematode infection", "neurodermatitis", "neurofibromatosis", "neurotic excoriations",
    "neutrophilic dermatoses", "nevocytic nevus", "nevus sebaceous of jadassohn",
    "papilomatosis confluentes and reticulate", "paronychia", "pediculosis lids", "perioral dermatitis",
    "photodermatoses", "pilar cyst", "pilomatricoma", "pityriasis lichenoides chronica", "pityriasis rosea",
    "pityriasis rubra pilaris", "porokeratosis actinic", "porokeratosis of mibelli", "porphyria", "port wine stain",
    "prurigo nodularis", "psoriasis", "pustular psoriasis", "pyogenic granuloma", "rhinophyma", "rosacea",
    "sarcoidosis", "scabies", "scleroderma", "scleromyxedema", "seborrheic dermatitis", "seborrheic keratosis",
    "solid cystic basal cell carcinoma", "squamous cell carcinoma", "stasis edema", "stevens johnson syndrome",
    "striae", "sun damaged skin", "superficial spreading melanoma ssm", "syringoma", "telangiectases", "tick bite",
    "tuberous sclerosis", "tungiasis", "urticaria", "urticaria pigmentosa", "vitiligo", "xanthomas",
    "xeroderma pigmentosum",
]
FITZPATRICK17K_MALIGNANT = [  # three_partition_label == "malignant"
    "actinic keratosis", "basal cell carcinoma", "basal cell carcinoma morpheiform", "kaposi sarcoma",
    "lentigo maligna", "malignant melanoma", "melanoma", "mycosis fungoides", "solid cystic basal cell carcinoma",
    "squamous cell carcinoma", "superficial spreading melanoma ssm",
]
DDI = [
    "abrasions-ulcerations-and-physical-injuries", "abscess", "acne-cystic", "acquired-digital-fibrokeratoma",
    "acral-melanotic-macule", "acrochordon", "actinic-keratosis", "angioleiomyoma", "angioma",
    "arteriovenous-hemangioma", "atypical-spindle-cell-nevus-of-reed", "basal-cell-carcinoma",
    "basal-cell-carcinoma-nodular", "basal-cell-carcinoma-superficial", "benign-keratosis",
    "blastic-plasmacytoid-dendritic-cell-neoplasm", "blue-nevus", "cellular-neurothekeoma", "chondroid-syringoma",
    "clear-cell-acanthoma", "coccidioidomycosis", "condyloma-accuminatum", "dermatofibroma", "dermatomyositis",
    "dysplastic-nevus", "eccrine-poroma", "eczema-spongiotic-dermatitis", "epidermal-cyst", "epidermal-nevus",
    "fibrous-papule", "focal-acral-hyperkeratosis", "folliculitis", "foreign-body-granuloma", "glomangioma",
    "graft-vs-host-disease", "hematoma", "hyperpigmentation", "inverted-follicular-keratosis", "kaposi-sarcoma",
    "keloid", "leukemia-cutis", "lichenoid-keratosis", "lipoma", "lymphocytic-infiltrations", "melanocytic-nevi",
    "melanoma", "melanoma-acral-lentiginous", "melanoma-in-situ", "metastatic-carcinoma", "molluscum-contagiosum",
    "morphea", "mycosis-fungoides", "neurofibroma", "neuroma", "nevus-lipomatosus-superficialis",
    "nodular-melanoma-(nm)", "onychomycosis", "pigmented-spindle-cell-nevus-of-reed", "prurigo-nodularis",
    "pyogenic-granuloma", "reactive-lymphoid-hyperplasia", "scar", "sebaceous-carcinoma", "seborrheic-keratosis",
    "seborrheic-keratosis-irritated", "solar-lentigo", "squamous-cell-carcinoma", "squamous-cell-carcinoma-in-situ",
    "squamous-cell-carcinoma-keratoacanthoma", "subcutaneous-t-cell-lymphoma", "syringocystadenoma-papilliferum",
    "tinea-pedis", "trichilemmoma", "trichofolliculoma", "verruca-vulgaris", "verruciform-xanthoma", "wart",
    "xanthogranuloma",
]
DDI_MALIGNANT = [  # malignant == True in ddi_metadata.csv
    "basal-cell-carcinoma", "basal-cell-carcinoma-nodular", "basal-cell-carcinoma-superficial",
    "blastic-plasmacytoid-dendritic-cell-neoplasm", "kaposi-sarcoma", "leukemia-cutis", "melanoma",
    "melanoma-acral-lentiginous", "melanoma-in-situ", "metastatic-carcinoma", "mycosis-fungoides",
    "nodular-melanoma-(nm)", "sebaceous-carcinoma", "squamous-cell-carcinoma", "squamous-cell-carcinoma-in-situ",
    "squamous-cell-carcinoma-keratoacanthoma", "subcutaneous-t-cell-lymphoma",
    "atypical-spindle-cell-nevus-of-reed",  # DDI flags it malignant; clinically a Spitz/Reed naevus (see below)
]
SCIN = [  # the labels SCIN's official demo notebook lists (the most frequent of weighted_skin_condition_label)
    "Eczema", "Allergic Contact Dermatitis", "Insect Bite", "Urticaria", "Psoriasis", "Folliculitis",
    "Irritant Contact Dermatitis", "Tinea", "Herpes Zoster", "Drug Rash", "Herpes Simplex", "Impetigo",
    "Acute dermatitis, NOS", "Hypersensitivity", "Acne", "Pigmented purpuric eruption", "Leukocytoclastic Vasculitis",
    "Lichen planus/lichenoid eruption", "Pityriasis rosea", "Viral Exanthem", "Lichen Simplex Chronicus",
    "Stasis Dermatitis", "Keratosis pilaris", "CD - Contact dermatitis", "Scabies", "Tinea Versicolor",
    "Granuloma annulare", "Molluscum Contagiosum", "Rosacea", "Abrasion, scrape, or scab", "O/E - ecchymoses present",
    "Seborrheic Dermatitis", "Acute and chronic dermatitis", "Photodermatitis", "Cellulitis", "Abscess",
    "Verruca vulgaris", "SCC/SCCIS", "Purpura", "Intertrigo", "Miliaria", "Erythema multiforme", "Syphilis",
    "Lichen nitidus", "Cutaneous lupus", "Inflicted skin lesions", "Prurigo nodularis", "Perioral Dermatitis",
    "Post-Inflammatory hyperpigmentation", "Pityriasis lichenoides", "Chronic dermatitis, NOS",
]

PUBLISHED = {"ham10000": HAM10000, "synthetic_ham": HAM10000, "isic2019": ISIC2019, "pad_ufes20": PAD_UFES20,
             "fitzpatrick17k": FITZPATRICK17K, "ddi": DDI, "scin": SCIN}
EXPECTED_SIZES = {"ham10000": 7, "isic2019": 9, "pad_ufes20": 6, "fitzpatrick17k": 114, "ddi": 78}


@pytest.mark.parametrize("task_name", sorted(PUBLISHED))
def test_every_published_label_maps(task_name):
    task = load_task(task_name)
    labels = PUBLISHED[task_name]
    assert len(set(labels)) == len(labels) == EXPECTED_SIZES.get(task_name, len(labels))
    unscored = set(task.dataset.unscored_labels)
    mapped = {label: map_label(label, task.dataset.label_map) for label in labels if label not in unscored}
    assert not [label for label, cid in mapped.items() if cid is None], "labels that map to no condition"
    if task.labels:  # a fixed label set: every label lands in it
        assert not {label: cid for label, cid in mapped.items() if cid not in task.labels}
    for target in task.dataset.label_map.values():
        assert target in ONTO


def _at_risk(cid: str) -> bool:
    cond = ONTO.get(cid)
    return cond.malignant or cond.premalignant


def test_malignant_labels_map_to_malignant_or_premalignant_conditions():
    f17k, ddi = load_task("fitzpatrick17k"), load_task("ddi")
    assert all(_at_risk(map_label(x, f17k.dataset.label_map)) for x in FITZPATRICK17K_MALIGNANT)
    off = [x for x in DDI_MALIGNANT if not _at_risk(map_label(x, ddi.dataset.label_map))]
    assert off == ["atypical-spindle-cell-nevus-of-reed"]  # auroc_malignant follows DDI's own flag for it
    assert map_label("melanoma-acral-lentiginous", ddi.dataset.label_map) == "melanoma"
    # the same lesion is "at risk" whichever dataset names it: HAM akiec, ISIC AK, PAD ACK
    for task, code in (("ham10000", "akiec"), ("isic2019", "AK"), ("pad_ufes20", "ACK")):
        assert _at_risk(map_label(code, load_task(task).dataset.label_map)), (task, code)


def _cli_run(tmp_path, task, data, images_root, ids):
    from typer.testing import CliRunner

    from eval.cli import app

    replay = write_jsonl(tmp_path / "r.jsonl", [{"sample_id": i, "report": report([("melanoma", 0.7)])}
                                                for i in ids])
    res = CliRunner().invoke(app, ["--task", task, "--data", str(data), "--images-root", str(images_root),
                                   "--replay", str(replay), "--out", str(tmp_path / "out"), "--no-progress"])
    assert res.exit_code == 0, res.output
    return res, EvalResults.read(tmp_path / "out" / "results.json")


def test_ddi_acral_lentiginous_melanoma_is_scored_and_counts_are_headlines(tmp_path):
    folder = tmp_path / "ddi"
    shutil.copytree(EVAL_DATA / "ddi", folder)
    rows = list(csv.DictReader((folder / "ddi_metadata.csv").open()))
    res, results = _cli_run(tmp_path, "ddi", folder / "ddi_metadata.csv", folder, [r["DDI_file"] for r in rows])
    rec = {r.id: r for r in results.records}["000005.png"]
    assert rec.label == "melanoma-acral-lentiginous" and rec.label_id == "melanoma" and rec.correct is True
    assert results.run.n_label_unmapped == 0 and results.run.n_labelled == len(rows)
    assert f"labels: {len(rows)} of {len(rows)} samples scored" in res.output


def test_isic_unk_is_counted_as_unscored_not_unmapped(tmp_path):
    data = EVAL_DATA / "isic2019" / "ISIC_2019_Training_GroundTruth.csv"
    ids = ["ISIC_0000000", "ISIC_0000002", "ISIC_0000004", "ISIC_0000005"]
    res, results = _cli_run(tmp_path, "isic2019", data, data.parent / "ISIC_2019_Training_Input", ids)
    assert (results.run.n_label_unscored, results.run.n_label_unmapped) == (1, 0)
    assert results.unscored_labels == {"UNK": 1} and "1 unscored on purpose" in res.output
