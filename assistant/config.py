"""YAML run configuration: which model/backend, and how retrieval is set up.

Files start with the command that uses them (see ``assistant/configs/``); every packaged config is validated by
``tests/test_config.py``. CLI flags override file values.
"""

from __future__ import annotations

from pathlib import Path

import yaml
from pydantic import BaseModel, ConfigDict, Field, ValidationError

from assistant.backends.base import BackendConfig
from assistant.errors import ConfigError


class RetrievalConfig(BaseModel):
    model_config = ConfigDict(extra="forbid")

    enabled: bool = True
    store: str | None = Field(None, description="store folder; default $DERMASSIST_HOME/kb")
    chroma_url: str | None = Field(None, description="a Chroma server instead of the embedded store")
    embedding_model: str | None = Field(None, description="sentence-transformers name or path; default MiniLM")
    k: int = Field(6, ge=1, le=20)
    reranker: str | None = Field(None, description="optional cross-encoder name or path")


class AppConfig(BaseModel):
    model_config = ConfigDict(extra="forbid")

    backend: BackendConfig
    retrieval: RetrievalConfig = Field(default_factory=RetrievalConfig)


def load_config(path: str | Path) -> AppConfig:
    path = Path(path)
    if not path.is_file():
        raise ConfigError(f"config file not found: {path}")
    try:
        data = yaml.safe_load(path.read_text(encoding="utf-8")) or {}
    except yaml.YAMLError as exc:
        raise ConfigError(f"{path.name} is not valid YAML: {str(exc).splitlines()[0]}") from None
    try:
        return AppConfig.model_validate(data)
    except ValidationError as exc:
        err = exc.errors()[0]
        where = ".".join(str(p) for p in err["loc"])
        raise ConfigError(f"{path.name}: {where}: {err['msg']}") from None
