"""Every dataset adapter on small fixture files written in its published format (tests/data/eval/)."""

from __future__ import annotations

import shutil

import pytest

from eval.datasets import ADAPTERS, DatasetError, load_dataset
from eval.datasets.vqa import mediqa_weight
from support.paths import EVAL_DATA

DATA = EVAL_DATA
HAM_MAP = {"mel": "melanoma", "nv": "melanocytic_nevus", "bkl": "benign_keratosis", "vasc": "vascular_lesion"}


def by_id(ds):
    return {s.id: s for s in ds.samples}


def test_registry_lists_every_adapter():
    assert set(ADAPTERS.names()) >= {"ham10000", "isic2019", "pad_ufes20", "fitzpatrick17k", "ddi", "scin",
                                    "mmskin_vqa", "mediqa_m3g", "skincap", "image_folder", "csv_manifest",
                                    "jsonl_manifest"}


def test_ham10000_images_found_in_part_folders_missing_skipped_unknown_listed():
    ds = load_dataset("ham10000", DATA / "ham10000/HAM10000_metadata.csv", DATA / "ham10000", label_map=HAM_MAP)
    s = by_id(ds)
    assert set(s) == {"ISIC_0027419", "ISIC_0026769", "ISIC_0024698", "ISIC_0029176"}
    assert s["ISIC_0024698"].images[0].parent.name == "HAM10000_images_part_2"
    assert s["ISIC_0027419"].label_id == "benign_keratosis"
    assert s["ISIC_0027419"].context == {"age": 80, "sex": "male", "body_site": "scalp"}
    assert [(k.id, k.reason) for k in ds.skipped] == [("ISIC_0031633", "image not found: ISIC_0031633")]
    assert ds.unknown_labels == {"xyz": 1} and s["ISIC_0029176"].label_id is None
    assert ds.fingerprint.startswith("sha256:")


def test_ham10000_labels_required_drops_unknown():
    ds = load_dataset("ham10000", DATA / "ham10000/HAM10000_metadata.csv", DATA / "ham10000", label_map=HAM_MAP,
                      labels_required=True)
    assert "ISIC_0029176" not in by_id(ds)
    assert any(k.reason == "unknown label: xyz" for k in ds.skipped)


def test_missing_column_names_column_and_file(tmp_path):
    bad = tmp_path / "meta.csv"
    bad.write_text("lesion_id,image_id,dx_type,age,sex,localization\nL1,I1,histo,1,male,back\n")
    with pytest.raises(DatasetError) as err:
        load_dataset("ham10000", bad, tmp_path)
    assert "'dx'" in str(err.value) and str(bad) in str(err.value)


def test_empty_dataset_is_an_error(tmp_path):
    empty = tmp_path / "meta.csv"
    empty.write_text("lesion_id,image_id,dx,dx_type,age,sex,localization\n")
    with pytest.raises(DatasetError, match="no usable samples"):
        load_dataset("ham10000", empty, tmp_path)
    only_missing = tmp_path / "meta2.csv"
    only_missing.write_text("lesion_id,image_id,dx,dx_type,age,sex,localization\nL1,NOPE,mel,histo,1,male,back\n")
    with pytest.raises(DatasetError, match="1 image not found"):
        load_dataset("ham10000", only_missing, tmp_path)


def test_missing_file_is_an_error(tmp_path):
    with pytest.raises(DatasetError, match="not found"):
        load_dataset("ham10000", tmp_path / "nope.csv")


def test_isic2019_one_hot_with_metadata():
    ds = load_dataset("isic2019", DATA / "isic2019/ISIC_2019_Training_GroundTruth.csv",
                      DATA / "isic2019/ISIC_2019_Training_Input", {"metadata": "ISIC_2019_Training_Metadata.csv"},
                      {"MEL": "melanoma", "NV": "melanocytic_nevus", "SCC": "squamous_cell_carcinoma"})
    s = by_id(ds)
    assert s["ISIC_0000000"].label == "NV" and s["ISIC_0000000"].label_id == "melanocytic_nevus"
    assert s["ISIC_0000004"].context == {"age": 80, "sex": "male", "body_site": "head/neck"}
    assert s["ISIC_0000005"].label == "UNK" and ds.unknown_labels == {"UNK": 1}
    assert [k.id for k in ds.skipped] == ["ISIC_0000006"]  # two classes marked


def test_pad_ufes20_fitspatrick_symptoms_and_codes():
    ds = load_dataset("pad_ufes20", DATA / "pad_ufes20/metadata.csv", DATA / "pad_ufes20/images",
                      label_map={"NEV": "melanocytic_nevus", "BCC": "basal_cell_carcinoma", "ACK": "actinic_keratosis",
                                 "MEL": "melanoma"})
    s = by_id(ds)
    bcc = s["PAT_46_881_939.png"]
    assert bcc.fitzpatrick == "III" and bcc.fst_group == "34" and bcc.label_id == "basal_cell_carcinoma"
    assert bcc.context["symptoms"] == {"itch": True, "growth": True, "pain": False, "change": True, "bleeding": True}
    assert bcc.context["sex"] == "female" and bcc.context["body_site"] == "NECK"
    mel = s["PAT_9_17_80.png"]
    assert mel.fitzpatrick == "VI" and "itch" not in mel.context["symptoms"]  # UNK -> not known
    assert s["PAT_1516_1765_530.png"].fitzpatrick is None


def test_fitzpatrick17k_minus_one_is_unknown_and_qc_filters():
    ds = load_dataset("fitzpatrick17k", DATA / "fitzpatrick17k/fitzpatrick17k.csv", DATA / "fitzpatrick17k/images",
                      {"exclude_qc": ["3"]})
    s = by_id(ds)
    assert s["d1b8a4a6ad58a2f3b4d79a1c7e0b2c11"].fitzpatrick is None
    assert s["fa2911a9b13b6f8af79cb700937cc14f"].fitzpatrick == "I"
    assert s["fa2911a9b13b6f8af79cb700937cc14f"].malignant is True
    assert s["fa2911a9b13b6f8af79cb700937cc14f"].label_id == "melanoma"
    assert "0a1b2c3d4e5f60718293a4b5c6d7e8f9" not in s
    qc = load_dataset("fitzpatrick17k", DATA / "fitzpatrick17k/fitzpatrick17k.csv", DATA / "fitzpatrick17k/images",
                      {"qc_only": True})
    assert set(by_id(qc)) == {"fa2911a9b13b6f8af79cb700937cc14f", "0a1b2c3d4e5f60718293a4b5c6d7e8f9"}


def test_ddi_groups_and_malignancy():
    ds = load_dataset("ddi", DATA / "ddi/ddi_metadata.csv", DATA / "ddi")
    s = by_id(ds)
    assert s["000001.png"].fst_group == "56" and s["000001.png"].fitzpatrick is None
    assert s["000001.png"].malignant is True and s["000003.png"].malignant is False
    assert s["000003.png"].fst_group == "12"


def test_scin_join_weighted_label_fitzpatrick_and_monk():
    ds = load_dataset("scin", DATA / "scin/dataset/scin_cases.csv", DATA / "scin")
    s = by_id(ds)
    a = s["-1000600354148496558"]
    assert a.label == "Eczema" and len(a.images) == 2
    assert a.fitzpatrick == "III" and a.meta["fitzpatrick_source"] == "dermatologist"  # majority of FST3, FST3, FST2
    assert a.monk == 2  # US label preferred
    c = s["-1003294415749949987"]
    assert c.label == "Psoriasis"  # tie 0.5/0.5: first listed
    assert c.fitzpatrick == "V" and c.meta["fitzpatrick_source"] == "self_reported" and c.monk == 8
    assert any(k.reason == "no dermatologist condition label" for k in ds.skipped)


def test_mmskin_open_and_yesno():
    ds = load_dataset("mmskin_vqa", DATA / "mmskin/vqa_test.csv", DATA / "mmskin/images")
    assert len(ds.samples) == 3 and ds.samples[0].references[0].text.startswith("Psoriasis")
    assert any(k.reason == "image not found: img_404.jpg" for k in ds.skipped)
    yn = load_dataset("mmskin_vqa", DATA / "mmskin/vqa_test.csv", DATA / "mmskin/images", {"yesno_only": True})
    assert [s.answer for s in yn.samples] == ["no", "yes"] and all(not s.references for s in yn.samples)


def test_mediqa_weights_follow_the_official_scheme():
    assert mediqa_weight({"validation_level": "md3_validated", "rank_level": "level_6"}, 1.0, 1.0) == 1.0
    assert mediqa_weight({"validation_level": "realid_validated", "rank_level": "level_2"}, 0.5, 0.0) == 0.6
    assert mediqa_weight({"validation_level": "md_validated", "rank_level": "unk"}, 1.0, 0.0) == 0.8
    assert mediqa_weight({}, 0.0, 1.0) == 0.7  # author missing from the user-info file
    assert mediqa_weight(None, 0.0, 0.0) == 1.0  # no user-info file at all: uniform


def test_mediqa_m3g_encounters(tmp_path):
    ds = load_dataset("mediqa_m3g", DATA / "mediqa_m3g/valid.json", DATA / "mediqa_m3g/images_valid")
    s = by_id(ds)
    enc = s["ENC00001"]
    assert len(enc.images) == 2 and enc.question.startswith("Itchy red patches")
    assert [r.weight for r in enc.references] == [1.0, 0.6, 0.7]
    # without the user-info file: every weight 1.0
    shutil.copytree(DATA / "mediqa_m3g", tmp_path / "m")
    (tmp_path / "m/df_userinfo.csv").unlink()
    plain = load_dataset("mediqa_m3g", tmp_path / "m/valid.json", tmp_path / "m/images_valid")
    assert {r.weight for s_ in plain.samples for r in s_.references} == {1.0}


def test_mediqa_missing_field_is_named(tmp_path):
    (tmp_path / "v.json").write_text('[{"encounter_id": "E1", "image_ids": []}]')
    with pytest.raises(DatasetError, match="query_title_en"):
        load_dataset("mediqa_m3g", tmp_path / "v.json", tmp_path)


def test_skincap_captions():
    ds = load_dataset("skincap", DATA / "skincap/skincap_v240623.csv", DATA / "skincap/skincap")
    s = by_id(ds)
    assert set(s) == {"1", "2"} and s["2"].fitzpatrick == "IV" and s["2"].label_id == "psoriasis"
    assert "melanoma" in s["1"].references[0].text
    assert any(k.reason.startswith("empty caption") for k in ds.skipped)


def test_image_folder_classes_are_subfolders():
    ds = load_dataset("image_folder", DATA / "image_folder")
    assert sorted((s.id, s.label_id) for s in ds.samples) == [
        ("melanoma/a.jpg", "melanoma"), ("melanoma/b.png", "melanoma"), ("psoriasis/c.jpg", "psoriasis")]


def test_csv_and_jsonl_manifests():
    csv_ds = load_dataset("csv_manifest", DATA / "manifest/manifest.csv", DATA / "manifest")
    q1 = by_id(csv_ds)["q1"]
    assert q1.choices == ["Melanoma", "Melanocytic nevus", "Seborrheic keratosis"] and q1.answer == "B"
    assert q1.fitzpatrick == "II" and q1.monk == 3
    js = by_id(load_dataset("jsonl_manifest", DATA / "manifest/manifest.jsonl", DATA / "manifest"))
    assert len(js["j1"].images) == 2 and js["j1"].fst_group == "56" and js["j1"].context == {"age": 40}
    assert [(r.text, r.weight) for r in js["j2"].references] == [("brown macule", 1.0), ("a flat brown spot", 0.5)]


def test_unknown_adapter():
    with pytest.raises(DatasetError, match="unknown dataset adapter"):
        load_dataset("nope", DATA / "ham10000/HAM10000_metadata.csv")
