"""The tiny models: a random-weight Qwen2-VL / Qwen2.5-VL built offline, and the packaged demo model.

* ``build_tiny_model`` writes a tiny **random-weight** model that transformers and vLLM both load, fully offline.
  The tests use it so every code path — intake, prompts, constrained decoding, LoRA, vLLM, HTTP — runs for real
  without a model hub; its reports are meaningless. Sizes follow what vLLM's CPU attention accepts (head_dim 64;
  mrope_section sums to head_dim/2).
* ``ensure_demo_model`` returns the **trained demo model** when this install ships one in ``assistant/models/demo``
  (written by ``dermassist finetune --config finetune/configs/tiny/full_synthetic.yaml
  export_demo=assistant/models/demo``), after checking every file against its recorded sha256.
* ``default_model`` is what runs when no ``--model`` is given: that trained demo when it is shipped, else the tiny
  random model, each with the stderr warning that says what it is. (No trained demo ships yet: its recipe,
  ``finetune/configs/tiny/full_synthetic.yaml`` on ``DEMO_INIT_STD``, has not been run to the issue's accuracy bar —
  docs/finetune.md, "Learning, and the demo model".)
"""

from __future__ import annotations

import json
import os
import shutil
import sys
import tempfile
from pathlib import Path
from typing import Literal

from filelock import FileLock

Arch = Literal["qwen2_vl", "qwen2_5_vl"]
TINY_MAX_PIXELS = 112 * 112  # ~16 image tokens per image keeps CPU generation fast
TEST_INIT_STD = 0.02  # transformers' default initializer_range: the tests' random model
DEMO_INIT_STD = 0.1  # about 1/sqrt(width): the demo's base, whose image signal survives into training
SPECIAL_TOKENS = [
    "<|endoftext|>", "<|im_start|>", "<|im_end|>", "<|vision_start|>", "<|vision_end|>", "<|vision_pad|>",
    "<|image_pad|>", "<|video_pad|>",
]
# The standard Qwen2-VL chat template, reduced to what dermassist sends (text, images).
CHAT_TEMPLATE = (
    "{% for message in messages %}{% if loop.first and message['role'] != 'system' %}<|im_start|>system\n"
    "You are a helpful assistant.<|im_end|>\n{% endif %}<|im_start|>{{ message['role'] }}\n"
    "{% if message['content'] is string %}{{ message['content'] }}<|im_end|>\n{% else %}"
    "{% for content in message['content'] %}{% if content['type'] == 'image' or 'image' in content "
    "or 'image_url' in content %}<|vision_start|><|image_pad|><|vision_end|>{% elif content['type'] == 'video' %}"
    "<|vision_start|><|video_pad|><|vision_end|>{% elif 'text' in content %}{{ content['text'] }}{% endif %}"
    "{% endfor %}<|im_end|>\n{% endif %}{% endfor %}{% if add_generation_prompt %}<|im_start|>assistant\n{% endif %}"
)
DEMO_WARNING = (
    "dermassist: using the packaged demo model, a tiny model fine-tuned on synthetic lesion drawings — a DEMO, NOT "
    "MEDICAL: its reports name synthetic lesion classes and mean nothing for real skin. Pass --model (e.g. "
    "Qwen/Qwen2.5-VL-3B-Instruct on a GPU) for real reports."
)
MEANINGLESS_WARNING = (
    "dermassist: using the tiny demo model (random weights) — its reports are MEANINGLESS and only show that the "
    "pipeline works. Pass --model (e.g. Qwen/Qwen2.5-VL-3B-Instruct on a GPU) for real reports."
)
DEMO_DIR = Path(__file__).with_name("demo")
DEMO_MANIFEST = "DEMO_MODEL.json"


def _training_text() -> list[str]:
    """Text the tokenizer is trained on: our prompts plus JSON-ish report vocabulary, so tokens are multi-char."""
    from importlib import resources

    texts: list[str] = []
    root = resources.files("prompts")
    for folder in root.iterdir():
        if folder.is_dir():
            texts += [f.read_text(encoding="utf-8") for f in folder.iterdir() if f.name.endswith(".j2")]
    words = ("papule plaque macule nodule vesicle pustule erythematous scaly pigmented brown pink red border "
             "irregular regular symmetric asymmetric melanoma nevus psoriasis eczema dermatitis carcinoma keratosis "
             "routine soon urgent emergency refer dermatology biopsy likelihood confidence rationale findings "
             "differential diagnosis triage red_flags recommendations limitations summary colour shape size")
    texts += [words] * 20
    texts += ['{"findings": {"primary_morphology": "plaque", "colour": "pink", "shape": "oval"}, '
              '"differential": [{"condition": "psoriasis", "likelihood": 0.6, "citation_ids": []}]}'] * 20
    return texts


def _build_tokenizer(vocab_size: int = 1024):
    from tokenizers import ByteLevelBPETokenizer
    from transformers import Qwen2Tokenizer

    bpe = ByteLevelBPETokenizer()
    bpe.train_from_iterator(_training_text(), vocab_size=vocab_size - len(SPECIAL_TOKENS), min_frequency=1,
                            show_progress=False)
    model = json.loads(bpe._tokenizer.to_str())["model"]
    merges = [tuple(m.split(" ")) if isinstance(m, str) else tuple(m) for m in model["merges"]]
    tok = Qwen2Tokenizer(vocab=model["vocab"], merges=merges, unk_token=None, bos_token=None,
                         eos_token="<|im_end|>", pad_token="<|endoftext|>")
    tok.add_special_tokens({"additional_special_tokens": SPECIAL_TOKENS})
    tok.chat_template = CHAT_TEMPLATE
    return tok


def _build_config(arch: Arch, tok, init_std: float = 0.02):
    from transformers import Qwen2_5_VLConfig, Qwen2VLConfig

    ids = {name: tok.convert_tokens_to_ids(name) for name in SPECIAL_TOKENS}
    vocab = ((len(tok) + 63) // 64) * 64
    text = dict(vocab_size=vocab, hidden_size=128, intermediate_size=256, num_hidden_layers=2,
                num_attention_heads=2, num_key_value_heads=1, max_position_embeddings=8192,
                rope_parameters={"rope_type": "default", "rope_theta": 1_000_000.0, "mrope_section": [8, 12, 12]},
                bos_token_id=ids["<|endoftext|>"], eos_token_id=ids["<|im_end|>"], pad_token_id=ids["<|endoftext|>"],
                initializer_range=init_std)
    if arch == "qwen2_5_vl":
        vision = dict(depth=2, hidden_size=64, intermediate_size=128, num_heads=2, out_hidden_size=128,
                      window_size=56, fullatt_block_indexes=[1], initializer_range=init_std)
        cls = Qwen2_5_VLConfig
    else:
        vision = dict(depth=2, embed_dim=64, hidden_size=128, num_heads=2, mlp_ratio=2, initializer_range=init_std)
        cls = Qwen2VLConfig
    return cls(text_config=text, vision_config=vision, image_token_id=ids["<|image_pad|>"],
               video_token_id=ids["<|video_pad|>"], vision_start_token_id=ids["<|vision_start|>"],
               vision_end_token_id=ids["<|vision_end|>"], tie_word_embeddings=False, initializer_range=init_std)


def build_tiny_model(out_dir: str | Path, arch: Arch = "qwen2_5_vl", *, lora_dir: str | Path | None = None,
                     seed: int = 0, init_std: float = TEST_INIT_STD) -> Path:
    """Write model, tokenizer and processor to ``out_dir`` (atomically); optionally a random LoRA adapter.

    ``init_std`` is the weights' initial standard deviation. The tests' model keeps transformers' 0.02; the demo's
    base uses ``DEMO_INIT_STD``: at 64-128 wide, 0.02 starves the image signal and fine-tuning never learns to read
    the images (docs/finetune.md, "Learning, and the demo model")."""
    import torch
    from transformers import (
        AutoModelForImageTextToText,
        Qwen2_5_VLProcessor,
        Qwen2VLImageProcessor,
        Qwen2VLProcessor,
        Qwen2VLVideoProcessor,
    )

    out = Path(out_dir)
    torch.manual_seed(seed)
    tok = _build_tokenizer()
    config = _build_config(arch, tok, init_std)
    model = AutoModelForImageTextToText.from_config(config, dtype=torch.float32)
    image_processor = Qwen2VLImageProcessor(min_pixels=56 * 56, max_pixels=TINY_MAX_PIXELS)
    video_processor = Qwen2VLVideoProcessor(min_pixels=56 * 56, max_pixels=TINY_MAX_PIXELS)
    processor_cls = Qwen2_5_VLProcessor if arch == "qwen2_5_vl" else Qwen2VLProcessor
    processor = processor_cls(image_processor=image_processor, tokenizer=tok, video_processor=video_processor,
                              chat_template=CHAT_TEMPLATE)
    out.parent.mkdir(parents=True, exist_ok=True)
    tmp = Path(tempfile.mkdtemp(prefix=f".{out.name}.", dir=out.parent))
    try:
        model.generation_config.do_sample = False
        model.save_pretrained(tmp)
        processor.save_pretrained(tmp)
        (tmp / "DERMASSIST_TINY_MODEL.txt").write_text(MEANINGLESS_WARNING + "\n", encoding="utf-8")
        if out.exists():
            shutil.rmtree(out)
        os.replace(tmp, out)
    finally:
        shutil.rmtree(tmp, ignore_errors=True)
    if lora_dir is not None:
        build_tiny_lora(out, lora_dir, seed=seed + 1)
    return out


def build_tiny_lora(model_dir: str | Path, lora_dir: str | Path, *, seed: int = 1, rank: int = 8) -> Path:
    """A random (non-zero) LoRA on the language model's attention and MLP projections: it changes the output."""
    import torch
    from peft import LoraConfig, get_peft_model
    from transformers import AutoModelForImageTextToText

    torch.manual_seed(seed)
    model = AutoModelForImageTextToText.from_pretrained(model_dir, dtype=torch.float32)
    config = LoraConfig(r=rank, lora_alpha=2 * rank, init_lora_weights=False,
                        target_modules=r".*language_model.*\.(q_proj|k_proj|v_proj|o_proj|gate_proj|up_proj|down_proj)")
    peft_model = get_peft_model(model, config)
    with torch.no_grad():  # make the adapter strong enough to flip greedy choices of a random model
        for name, param in peft_model.named_parameters():
            if "lora_B" in name:
                param.normal_(0.0, 0.5)
    peft_model.save_pretrained(lora_dir)
    return Path(lora_dir)


def is_tiny_model(model_dir: str | Path) -> bool:
    return (Path(model_dir) / "DERMASSIST_TINY_MODEL.txt").is_file()


def ensure_random_model(arch: Arch = "qwen2_5_vl", seed: int = 0, init_std: float = TEST_INIT_STD) -> Path:
    """The tiny random-weight model, built on first use into ``$DERMASSIST_HOME/models/tiny-random-<arch>-s<seed>``
    (``...-i<init_std>`` when not the tests' 0.02; process-safe). Tests use the default; the demo config fine-tunes
    the ``DEMO_INIT_STD`` one (seed 0)."""
    from assistant.core.paths import dermassist_home

    suffix = "" if init_std == TEST_INIT_STD else f"-i{init_std:g}"
    target = dermassist_home() / "models" / f"tiny-random-{arch}-s{seed}{suffix}"
    target.parent.mkdir(parents=True, exist_ok=True)
    with FileLock(str(target) + ".lock"):
        if not (target / "config.json").is_file():
            print(f"dermassist: building the tiny random model into {target} (a few seconds)", file=sys.stderr)
            build_tiny_model(target, arch, seed=seed, init_std=init_std)
    return target


def ensure_demo_model(directory: Path = DEMO_DIR) -> Path:
    """The packaged demo model (``assistant/models/demo``), after checking every file against its recorded sha256.

    A missing or altered file is a ``ConfigError`` that says how to get it back: a damaged demo must never load
    silently as some other model.
    """
    import hashlib

    from assistant.core.errors import ConfigError

    manifest_file = directory / DEMO_MANIFEST
    rebuild = "reinstall dermassist, or rebuild it with: {command}"
    try:
        manifest = json.loads(manifest_file.read_text(encoding="utf-8"))
        files, command = dict(manifest["sha256"]), str(manifest["command"])
    except (OSError, ValueError, KeyError, TypeError):
        raise ConfigError(f"the packaged demo model is missing or damaged (no valid {DEMO_MANIFEST}); reinstall "
                          "dermassist") from None
    for name, expected in sorted(files.items()):
        path = directory / name
        if not path.is_file():
            raise ConfigError(f"the packaged demo model is damaged ({name} is missing); "
                              + rebuild.format(command=command))
        if hashlib.sha256(path.read_bytes()).hexdigest() != expected:
            raise ConfigError(f"the packaged demo model is damaged ({name} does not match its sha256 checksum); "
                              + rebuild.format(command=command))
    return directory


def default_model() -> tuple[Path, str]:
    """The model for runs without ``--model`` and the warning to print: the packaged demo when this install ships
    one (its folder exists: then it must be intact), else the tiny random model."""
    if DEMO_DIR.exists():
        return ensure_demo_model(DEMO_DIR), DEMO_WARNING
    return ensure_random_model(), MEANINGLESS_WARNING
