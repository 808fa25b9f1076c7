"""Every task file loads and validates; each opens with the command that runs it; bad task files fail clearly."""

from __future__ import annotations

import pytest

from assistant.core.errors import ConfigError
from eval.task import load_task, task_files


@pytest.mark.parametrize("path", task_files(), ids=lambda p: p.stem)
def test_every_task_file_validates(path):
    task = load_task(path)
    assert task.name == path.stem
    first = path.read_text().splitlines()[0]
    assert first.startswith("# Run: dermassist eval") and f"--task {task.name}" in first


def test_expected_tasks_exist():
    names = {p.stem for p in task_files()}
    assert names >= {"synthetic_ham", "ham10000", "isic2019", "pad_ufes20", "fitzpatrick17k", "ddi", "scin",
                     "mmskin_vqa", "mediqa_m3g", "skincap"}


def test_load_by_name_and_unknown_name():
    assert load_task("ham10000").type == "classification"
    with pytest.raises(ConfigError, match="unknown task 'nope'"):
        load_task("nope")


@pytest.mark.parametrize("body,message", [
    ("name: x\nversion: '1'\ntype: classification\ndataset: {adapter: nope}\nmetrics: [accuracy]\n",
     "unknown dataset adapter"),
    ("name: x\nversion: '1'\ntype: open_vqa\nprompt: '{question}'\ndataset: {adapter: mmskin_vqa}\n"
     "metrics: [accuracy]\n", "not available for open_vqa"),
    ("name: x\nversion: '1'\ntype: classification\ndataset: {adapter: ham10000}\nlabels: [not_a_condition]\n"
     "metrics: [accuracy]\n", "unknown condition id"),
    ("name: x\nversion: '1'\ntype: closed_vqa\nprompt: '{questoin}'\ndataset: {adapter: mmskin_vqa}\n"
     "metrics: [accuracy]\n", "unknown field"),
    ("name: x\nversion: '1'\ntype: classification\ndataset: {adapter: ham10000}\nmetrics: [accuracy]\nbogus: 1\n",
     "bogus"),
    ("- just a list\n", "mapping"),
])
def test_bad_task_files_fail_with_a_clear_message(tmp_path, body, message):
    path = tmp_path / "t.yaml"
    path.write_text(body)
    with pytest.raises(ConfigError, match=message):
        load_task(path)
