"""SFT data from the eval adapters: splits without leakage, sampling, the card, held-out eval tasks, caching, and
prompts that are token for token the prompts inference sends."""

from __future__ import annotations

import json
from collections import Counter
from pathlib import Path

import pytest

from assistant.core.errors import ConfigError
from eval.datasets import load_dataset
from eval.task import load_task
from finetune.config import FinetuneArguments
from finetune.data.build import build_data
from finetune.data.records import SftRecord
from finetune.data.sampling import rebalance
from finetune.data.split import LeakageError, check_no_leakage, split_records
from support.paths import EVAL_DATA


def args(**kw) -> FinetuneArguments:
    return FinetuneArguments(**{"retrieval": False, **kw})


def synthetic_args(synthetic: Path, **kw) -> FinetuneArguments:
    return args(task="synthetic_ham", data=str(synthetic), images_root=str(synthetic.parent / "images"), **kw)


def lesion_of(record: SftRecord) -> str:
    return next(k for k in record.leakage_keys if k.startswith("lesion_id:"))


def test_lesions_with_several_images_never_cross_splits(ham_lesions, tmp_path):
    built = build_data(args(task="ham10000", data=str(ham_lesions), val_fraction=0.25, test_fraction=0.25), tmp_path)
    splits = {name: built.records(name) for name in ("train", "val", "test")}
    lesions = {name: {lesion_of(r) for r in rows} for name, rows in splits.items()}
    assert all(lesions[name] for name in splits)  # every split got lesions ...
    assert not (lesions["train"] & lesions["val"]) and not (lesions["train"] & lesions["test"])  # ... disjoint
    assert not (lesions["val"] & lesions["test"])
    for rows in splits.values():  # all images of a lesion stay together
        per_lesion = Counter(lesion_of(r) for r in rows)
        for lesion, n in per_lesion.items():
            assert n == 1 + int(lesion.rsplit("_", 1)[1]) % 3
    assert built.card.groups["train"] == len(lesions["train"])
    assert sum(built.card.counts.values()) == sum(1 + i % 3 for i in range(24))


def test_questions_about_one_image_never_cross_splits(mmskin_repeated, tmp_path):
    built = build_data(args(task="mmskin_vqa", data=str(mmskin_repeated), val_fraction=0.2, test_fraction=0.2),
                       tmp_path)
    images = {name: {img for r in built.records(name) for img in r.images} for name in ("train", "val", "test")}
    assert images["test"] and images["val"] and images["train"]
    assert not (images["train"] & images["test"]) and not (images["train"] & images["val"])
    record = built.records("train")[0]
    assert record.kind == "vqa" and record.completion[0]["content"][0]["text"] in ("Brown.", "yes", "A benign naevus.")
    assert record.prompt[-1]["content"][0] == {"type": "image"}


def test_patients_and_encounters_are_groups_across_adapters():
    pad = load_dataset("pad_ufes20", EVAL_DATA / "pad_ufes20/metadata.csv")
    from finetune.data.records import leakage_keys

    keys = leakage_keys(pad.samples[0])
    assert any(k.startswith("patient_id:PAT_") for k in keys) and any(k.startswith("image:") for k in keys)
    mediqa = load_dataset("mediqa_m3g", EVAL_DATA / "mediqa_m3g/valid.json", EVAL_DATA / "mediqa_m3g/images_valid")
    encounter = mediqa.samples[0]
    assert all(k.startswith("image:") for k in leakage_keys(encounter))  # the encounter id is the record itself


def test_leakage_check_catches_a_shared_identity():
    a = SftRecord(id="t:a", source="t", kind="report", images=["x.jpg"], prompt=[], completion=[],
                  leakage_keys=["lesion_id:L1"])
    b = a.model_copy(update={"id": "t:b"})
    with pytest.raises(LeakageError, match="lesion_id 'L1' is in both the train and the test split"):
        check_no_leakage({"train": [a], "test": [b]})
    # and the splitter keeps such records together
    rows = [a.model_copy(update={"id": f"t:{i}", "leakage_keys": [f"lesion_id:L{i // 2}"], "label_id": "melanoma"})
            for i in range(40)]
    splits = split_records(rows, 0.2, 0.2, seed=1)
    check_no_leakage(splits)
    assert {len(v) for v in splits.values()} <= {8, 24} and sum(len(v) for v in splits.values()) == 40


def test_balancing_evens_out_classes_and_skin_tones():
    rows = []
    for i in range(300):
        label, tone = ("melanocytic_nevus", "12") if i < 240 else ("melanoma", "56" if i % 2 else "12")
        rows.append(SftRecord(id=f"t:{i}", source="t", kind="report", images=[], prompt=[], completion=[],
                              label_id=label, fst_group=tone))
    assert rebalance(rows, "none") == rows
    by_class = Counter(r.label_id for r in rebalance(rows, "class", seed=0))
    assert sum(by_class.values()) == 300 and abs(by_class["melanoma"] - 150) < 30  # was 60 of 300
    cells = Counter((r.label_id, r.fst_group) for r in rebalance(rows, "class_skin_tone", seed=0))
    assert all(abs(n - 100) < 30 for n in cells.values()) and len(cells) == 3  # three cells, a third each


def test_card_heldout_eval_tasks_and_cache(synthetic_small, tmp_path):
    ft = synthetic_args(synthetic_small, val_fraction=0.25, test_fraction=0.25)
    built = build_data(ft, tmp_path / "data", progress=False)
    card = built.card
    assert card.counts == {"train": 14, "val": 7, "test": 7}
    assert all(n == 1 for n in card.per_class["test"].values()) and len(card.per_class["test"]) == 7
    assert sum(card.per_fitzpatrick["train"].values()) == 14 and set(card.per_fst_group["train"]) <= {"12", "34", "56"}
    markdown = (tmp_path / "data" / "DATASET_CARD.md").read_text()
    assert "## Per class" in markdown and "## Per Fitzpatrick group" in markdown and "melanoma" in markdown
    # the held-out test split is an eval task the harness loads as is
    task = load_task(built.eval_task("test"))
    assert task.name == "synthetic_ham_test" and task.dataset.adapter == "jsonl_manifest"
    assert (tmp_path / "data" / "test_task.yaml").read_text().startswith("# Run: dermassist eval --task ")
    from eval.runner import load_task_dataset

    heldout, _, _ = load_task_dataset(task, None, None)
    assert sorted(s.id for s in heldout.samples) == sorted(r.id.split(":", 1)[1] for r in built.records("test"))
    assert all(s.label_id and s.fitzpatrick for s in heldout.samples)
    # cached: same settings reuse the files; a changed setting rebuilds
    stamp = (tmp_path / "data" / "train.jsonl").stat().st_mtime_ns
    assert build_data(ft, tmp_path / "data", progress=False).card.fingerprint == card.fingerprint
    assert (tmp_path / "data" / "train.jsonl").stat().st_mtime_ns == stamp
    rebuilt = build_data(synthetic_args(synthetic_small, val_fraction=0.25, test_fraction=0.25, split_seed=7),
                         tmp_path / "data", progress=False)
    assert rebuilt.card.fingerprint != card.fingerprint


def test_missing_task_and_synthetic_made_on_first_use(tmp_path):
    with pytest.raises(ConfigError, match="set `task`"):
        build_data(args(), tmp_path / "d")
    data = tmp_path / "fresh" / "metadata.csv"
    built = build_data(args(task="synthetic_ham", data=str(data), images_root=str(data.parent / "images"),
                            synthetic_n=14, synthetic_seed=2), tmp_path / "d", progress=False)
    assert data.is_file() and sum(built.card.counts.values()) == 14


@pytest.mark.slow
def test_report_targets_cite_what_the_real_retriever_returned(synthetic_small, tmp_path):
    built = build_data(synthetic_args(synthetic_small, retrieval=True, retrieval_k=4, max_samples=7),
                       tmp_path, progress=False)
    records = [r for split in ("train", "val", "test") for r in built.records(split)]
    assert records
    for record in records:
        user = record.prompt[1]["content"][-1]["text"]
        shown = {line[1:].split("]")[0] for line in user.splitlines() if line.startswith("[") and "#" in line}
        assert len(shown) == 4  # the four passages the retriever returned are in the prompt ...
        draft = json.loads(record.completion[0]["content"][0]["text"])
        cited = {c for item in draft["differential"] for c in item["citation_ids"]}
        assert cited and cited <= shown  # ... and the target cites only those
    assert built.card.settings["store_version"]
