"""Scale-out on accelerate: the real launcher, with the shipped DDP config, starts two training processes that join
over gloo on this CPU-only machine (`use_cpu` follows the machine) and train two steps together.

(`accelerate launch --cpu` is not used: it selects accelerate's simple launcher, which starts one process.)"""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

from support.finetune import tiny_settings, write_config
from support.net import free_port
from support.paths import REPO

pytestmark = pytest.mark.slow
ACCELERATE = str(Path(sys.executable).parent / "accelerate")


def test_two_processes_train_two_steps_with_accelerate_launch(tmp_path, synthetic_small, tiny_model):
    out = tmp_path / "out"
    config = write_config(tmp_path / "ddp.yaml", tiny_settings(synthetic_small, out, max_steps=2))
    cmd = [ACCELERATE, "launch", "--config_file", str(REPO / "finetune/accelerate/ddp.yaml"), "--num_processes", "2",
           "--mixed_precision", "no", "--main_process_port", str(free_port()), "-m", "finetune",
           "--config", str(config), "--no-progress"]
    proc = subprocess.run(cmd, capture_output=True, text=True, timeout=1500, env=os.environ.copy())
    assert proc.returncode == 0, proc.stderr[-4000:]
    summary = json.loads((out / "finetune_summary.json").read_text())
    assert summary["world_size"] == 2 and summary["global_step"] == 2
    assert proc.stdout.count("trained 2 steps") == 1  # the main process reports; the other one stays quiet
    assert (out / "adapter" / "adapter_model.safetensors").is_file()
