"""The run configuration: every packaged config validates; file < environment < flags; clear one-line errors."""

from __future__ import annotations

import pytest

from assistant.app.config import load_app_config
from assistant.app.options import ModelFlags, parse_adapters
from assistant.core.errors import ConfigError
from support.paths import REPO

CONFIGS = sorted((REPO / "assistant" / "configs").glob("*.yaml"))


def test_there_are_configs():
    assert len(CONFIGS) >= 3


@pytest.mark.parametrize("path", CONFIGS, ids=lambda p: p.name)
def test_config_validates_and_starts_with_its_command(path):
    config = load_app_config(path)
    assert config.backend.model and config.backend.backend
    assert path.read_text().startswith(f"# dermassist report lesion.jpg --config assistant/configs/{path.name}")


@pytest.mark.parametrize("text, message", [
    ("backend: [unclosed", "not valid YAML"),
    ("- a list", "must be a YAML mapping"),
    ("backend:\n  model: m\n  backend: vllm\n  dtype: 3", "backend.dtype"),
    ("retrieval:\n  k: 500", "retrieval.k"),
    ("backend:\n  model: m\n  typo_field: 1", "backend.typo_field"),
    ("generation:\n  max_new_tokens: 2", "generation.max_new_tokens"),
    ("safety:\n  malignant_threshold: 2", "safety.malignant_threshold"),
    ("safety:\n  differential_threshold: 0.15", "safety.differential_threshold"),  # renamed: refused, not ignored
    ("serving:\n  port: 0", "serving.port"),
    ("nonsense_section: 1", "nonsense_section"),
])
def test_bad_configs(tmp_path, text, message):
    path = tmp_path / "c.yaml"
    path.write_text(text)
    with pytest.raises(ConfigError, match=message):
        load_app_config(path)


def test_missing_config_file(tmp_path):
    with pytest.raises(ConfigError, match="config file not found"):
        load_app_config(tmp_path / "nope.yaml")


def test_precedence_file_then_environment_then_flags(tmp_path, monkeypatch):
    path = tmp_path / "c.yaml"
    path.write_text("backend:\n  model: from-file\n  dtype: float16\ngeneration:\n  max_new_tokens: 100\n  seed: 3\n"
                    "retrieval:\n  k: 4\n")
    monkeypatch.setenv("DERMASSIST_GENERATION__MAX_NEW_TOKENS", "200")
    monkeypatch.setenv("DERMASSIST_BACKEND__MODEL", "from-env")
    config = ModelFlags(config=path, model="from-flag", retrieval_k=7).load()
    assert config.backend.model == "from-flag"          # flag beats environment and file
    assert config.generation.max_new_tokens == 200      # environment beats file
    assert config.generation.seed == 3 and config.backend.dtype == "float16"  # the file fills the rest
    assert config.retrieval.k == 7
    assert ModelFlags(config=path).load().backend.model == "from-env"


def test_bad_environment_value_is_one_clear_line(monkeypatch):
    monkeypatch.setenv("DERMASSIST_GENERATION__TEMPERATURE", "hot")
    with pytest.raises(ConfigError, match="generation.temperature"):
        ModelFlags().load()


def test_unrelated_dermassist_variables_are_ignored(monkeypatch):
    monkeypatch.setenv("DERMASSIST_DEBUG", "1")
    monkeypatch.setenv("DERMASSIST_API_KEY", "k")
    assert ModelFlags().load().backend.model is None


@pytest.mark.parametrize("items, expected", [
    (["runs/derm-lora"], {"derm-lora": "runs/derm-lora"}),
    (["runs/derm-lora/"], {"derm-lora": "runs/derm-lora/"}),
    (["a=/x/y", "b=served-b"], {"a": "/x/y", "b": "served-b"}),
])
def test_one_adapter_spelling(items, expected):
    assert parse_adapters(items) == expected


@pytest.mark.parametrize("item", ["=x", "name=", " = "])
def test_bad_adapter_spelling(item):
    with pytest.raises(ConfigError, match="NAME=PATH or PATH"):
        parse_adapters([item])


def test_active_adapter(tmp_path):
    assert ModelFlags(adapter=("a=/x", "b=/y")).load().active_adapter() == "b"  # the last flag
    path = tmp_path / "c.yaml"
    path.write_text("backend:\n  adapters: {one: /x}\n")
    assert ModelFlags(config=path).load().active_adapter() == "one"  # the only one configured
    path.write_text("backend:\n  adapters: {one: /x, two: /y}\nadapter: three\n")
    with pytest.raises(ConfigError, match="'three' is not among the configured adapters"):
        ModelFlags(config=path).load().active_adapter()


def test_safety_policy_from_file_and_environment(tmp_path, monkeypatch):
    from assistant.pipeline.safety import SafetyPolicy

    path = tmp_path / "c.yaml"
    path.write_text("safety:\n  malignant_threshold: 0.2\n  negation_window: 4\n")
    monkeypatch.setenv("DERMASSIST_SAFETY__EMERGENCY_THRESHOLD", "0.01")
    config = ModelFlags(config=path).load()
    assert config.safety == SafetyPolicy(malignant_threshold=0.2, negation_window=4, emergency_threshold=0.01)
    monkeypatch.delenv("DERMASSIST_SAFETY__EMERGENCY_THRESHOLD")
    assert ModelFlags().load().safety == SafetyPolicy() and SafetyPolicy().malignant_threshold == 0.10


def test_serving_concurrency_follows_a_batching_engine_unless_set(tmp_path, monkeypatch):
    """The in-process vLLM engine batches concurrent requests, so an unset max_concurrency lets 32 in; anything the
    user set (file, environment, flag) is kept as is."""
    default = load_app_config().serving
    assert default.for_backend("vllm").max_concurrency == 32
    assert default.for_backend("transformers").max_concurrency == 4
    path = tmp_path / "c.yaml"
    path.write_text("serving:\n  max_concurrency: 2\n")
    assert load_app_config(path).serving.for_backend("vllm").max_concurrency == 2
    monkeypatch.setenv("DERMASSIST_SERVING__MAX_CONCURRENCY", "3")
    assert load_app_config().serving.for_backend("vllm").max_concurrency == 3
    assert load_app_config(overrides={"serving": {"max_concurrency": 5}}).serving.for_backend("vllm") \
        .max_concurrency == 5
