"""``AppConfig``: the whole run configuration, loaded in one place from a YAML file, the environment and flags.

Precedence, highest first: command-line flags > ``DERMASSIST_<SECTION>__<FIELD>`` environment variables > the
``--config`` YAML file > defaults. Every command (report, serve, eval, kb, ui, batch, finetune) loads its config
with :func:`load_app_config` and builds its pipeline with :func:`assistant.app.build.build_pipeline`, so the same
flags mean the same thing everywhere. Packaged run configs live in ``assistant/configs/``; each starts with the
command that uses it and is validated by ``tests/app/test_config.py``.
"""

from __future__ import annotations

import ipaddress
from contextvars import ContextVar
from pathlib import Path
from typing import Any

import yaml
from pydantic import BaseModel, ConfigDict, Field, ValidationError, model_validator
from pydantic_core import PydanticCustomError
from pydantic_settings import BaseSettings, PydanticBaseSettingsSource, SettingsConfigDict, SettingsError

from assistant.backends.base import BackendConfig
from assistant.core.case import MAX_IMAGES_PER_CASE
from assistant.core.errors import ConfigError, first_error
from assistant.pipeline.pipeline import GenerationSettings
from assistant.pipeline.safety import SafetyPolicy

ENV_PREFIX = "DERMASSIST_"
_FILE_DATA: ContextVar[dict[str, Any]] = ContextVar("dermassist_config_file", default={})  # noqa: B039 - read only


class BackendSection(BackendConfig):
    """The ``backend:`` section: which model, on which engine. Unlike ``BackendConfig`` every field is optional:
    the composition root fills in the demo model (or an upstream's model) and the default backend."""

    backend: str | None = Field(  # type: ignore[assignment]
        None, description="transformers | vllm | openai; default: openai with a base_url, vllm on a CUDA "
                          "machine with vLLM installed, else transformers")
    model: str | None = Field(  # type: ignore[assignment]
        None, description="local path or hub id, or the served name (openai); default: the packaged demo model "
                          "(transformers/vllm) or the first model the upstream lists (openai); 'demo' names it")


class RetrievalConfig(BaseModel):
    model_config = ConfigDict(extra="forbid")

    enabled: bool = True
    store: str | None = Field(None, description="store folder; default $DERMASSIST_HOME/kb")
    chroma_url: str | None = Field(None, description="a Chroma server instead of the embedded store")
    embedding_model: str | None = Field(None, description="sentence-transformers name or path; default MiniLM")
    k: int = Field(6, ge=1, le=20, description="passages in the prompt: more grounding, longer prompts")
    reranker: str | None = Field(None, description="optional cross-encoder name or path")


# Engines that batch concurrent requests (continuous batching) want many at once; an engine that runs one request at
# a time gains nothing from more than a few. Used when max_concurrency is not set anywhere.
BATCHING_CONCURRENCY = {"vllm": 32}


class ServingConfig(BaseModel):
    """``dermassist serve``: address, limits and the image policy. Every field has a safe default."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    host: str = Field("127.0.0.1", description="bind address; anything but loopback needs an API key")
    port: int = Field(8000, ge=1, le=65535)
    api_key: str | None = Field(None, description="required on every route but /health when set; prefer the "
                                                  "DERMASSIST_API_KEY variable to a file")
    insecure_no_auth: bool = Field(False, description="serve a non-loopback host without an API key (only behind "
                                                      "something else that authenticates)")
    allow_image_domains: tuple[str, ...] = Field(
        (), description="http(s) image URLs may come from these domains ('*.example.org' for subdomains); "
                        "default: data: URLs only")
    allow_private_image_hosts: bool = Field(
        False, description="allowed image domains may resolve to private/loopback addresses (on-prem PACS); "
                           "link-local and cloud-metadata addresses stay refused")
    image_ca_bundle: str | None = Field(None, description="PEM file of CAs to trust for https image hosts")
    image_fetch_timeout_s: float = Field(10.0, gt=0)
    image_max_bytes: int = Field(10 * 2**20, gt=0)
    max_images: int = Field(MAX_IMAGES_PER_CASE, ge=1, le=MAX_IMAGES_PER_CASE, description="images per request")
    max_body_bytes: int = Field(20 * 2**20, gt=0)
    max_tokens: int = Field(2048, ge=16, description="cap on a request's max_tokens")
    min_report_tokens: int = Field(256, ge=1, description="a report request's max_tokens may not be smaller: a "
                                                          "report is a whole JSON document")
    max_messages: int = Field(64, ge=1)
    max_text_chars: int = Field(32_000, ge=1, description="all message text together")
    max_concurrency: int = Field(4, ge=1, description="requests processed at once (unset: 32 with the in-process "
                                                     "vLLM engine, which batches them; see BATCHING_CONCURRENCY)")
    max_queue: int = Field(64, ge=0, description="requests waiting for a slot; beyond: 429")
    stream_chunk_chars: int = Field(128, ge=1)

    def for_backend(self, backend: str) -> ServingConfig:
        """These limits for ``backend``: an unset ``max_concurrency`` follows ``BATCHING_CONCURRENCY``."""
        if "max_concurrency" in self.model_fields_set or backend not in BATCHING_CONCURRENCY:
            return self
        return self.model_copy(update={"max_concurrency": BATCHING_CONCURRENCY[backend]})

    @model_validator(mode="after")
    def _authenticated(self) -> ServingConfig:
        """An empty key must not silently mean "no auth", and a server others can reach needs a key — unless
        the operator says explicitly that something else authenticates (``insecure_no_auth``)."""
        if self.api_key is not None and not self.api_key.strip():
            raise PydanticCustomError("empty_api_key", "the API key is empty (is DERMASSIST_API_KEY set to ''?); set "
                                      "a key, or unset it and pass --insecure-no-auth to serve without one")
        if not self.api_key and not self.insecure_no_auth and not is_loopback(self.host):
            raise PydanticCustomError("no_api_key", "listening on {host} needs an API key (set DERMASSIST_API_KEY); "
                                      "pass --insecure-no-auth only if something in front of the server "
                                      "authenticates", {"host": self.host})
        return self


def is_loopback(host: str) -> bool:
    if host.strip("[]").lower() == "localhost":
        return True
    try:
        return ipaddress.ip_address(host.strip("[]")).is_loopback
    except ValueError:
        return False


class AppConfig(BaseSettings):
    model_config = SettingsConfigDict(env_prefix=ENV_PREFIX, env_nested_delimiter="__", extra="forbid",
                                      nested_model_default_partial_update=True)

    backend: BackendSection = Field(default_factory=BackendSection)
    adapter: str | None = Field(None, description="the adapter reports use (a name in backend.adapters); "
                                                  "default: the only one configured, if exactly one")
    generation: GenerationSettings = Field(default_factory=GenerationSettings)
    retrieval: RetrievalConfig = Field(default_factory=RetrievalConfig)
    safety: SafetyPolicy = Field(default_factory=SafetyPolicy)
    serving: ServingConfig = Field(default_factory=ServingConfig)

    @classmethod
    def settings_customise_sources(cls, settings_cls: type[BaseSettings], init_settings: PydanticBaseSettingsSource,
                                   env_settings: PydanticBaseSettingsSource,
                                   dotenv_settings: PydanticBaseSettingsSource,
                                   file_secret_settings: PydanticBaseSettingsSource,
                                   ) -> tuple[PydanticBaseSettingsSource, ...]:
        """Flags (init) > environment > the YAML file; no dotenv or secret files."""
        return init_settings, env_settings, _FileSource(settings_cls, _FILE_DATA.get())

    def active_adapter(self) -> str | None:
        """The adapter single-pipeline commands use: the configured one, or the only one there is."""
        if self.adapter is not None:
            if self.adapter not in self.backend.adapters:
                raise ConfigError(f"adapter {self.adapter!r} is not among the configured adapters "
                                  f"({', '.join(sorted(self.backend.adapters)) or 'none'})")
            return self.adapter
        return next(iter(self.backend.adapters)) if len(self.backend.adapters) == 1 else None


def read_config_file(path: str | Path, mapping_of: str = "sections (backend, generation, retrieval, ...)"
                     ) -> dict[str, Any]:
    """A YAML run config as a mapping, every problem a one-line ``ConfigError``; ``mapping_of`` says what its keys
    are (in the error about a file that is not a mapping)."""
    path = Path(path)
    if not path.is_file():
        raise ConfigError(f"config file not found: {path}")
    try:
        data = yaml.safe_load(path.read_text(encoding="utf-8")) or {}
    except yaml.YAMLError as exc:
        raise ConfigError(f"{path.name} is not valid YAML: {str(exc).splitlines()[0]}") from None
    if not isinstance(data, dict):
        raise ConfigError(f"{path.name} must be a YAML mapping of {mapping_of}")
    return data


def load_app_config(path: str | Path | None = None, overrides: dict[str, Any] | None = None) -> AppConfig:
    """The YAML file (optional) < ``DERMASSIST_*`` environment < ``overrides`` (the flags, as nested sections)."""
    token = _FILE_DATA.set(read_config_file(path) if path else {})
    try:
        return AppConfig(**(overrides or {}))
    except ValidationError as exc:
        where = Path(path).name if path else "invalid setting"
        raise ConfigError(f"{where}: {first_error(exc)}") from None
    except SettingsError as exc:  # an environment variable that does not parse (e.g. bad JSON for a mapping)
        raise ConfigError(f"invalid {ENV_PREFIX}* environment variable: {str(exc).splitlines()[0]}") from None
    finally:
        _FILE_DATA.reset(token)


class _FileSource(PydanticBaseSettingsSource):
    """The lowest layer: the sections read from the ``--config`` file."""

    def __init__(self, settings_cls: type[BaseSettings], data: dict[str, Any]) -> None:
        super().__init__(settings_cls)
        self._data = data

    def get_field_value(self, field: Any, field_name: str) -> tuple[Any, str, bool]:
        return self._data.get(field_name), field_name, False

    def __call__(self) -> dict[str, Any]:
        return dict(self._data)
