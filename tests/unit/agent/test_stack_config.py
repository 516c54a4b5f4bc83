"""The Llama Stack run config PersAI generates from its settings."""

from __future__ import annotations

from pathlib import Path

import pytest
import yaml

from persai.agent.stack_config import (
    NoModelProvider,
    build_stack_config,
    configured_providers,
    server_environment,
    stack_environment,
    write_stack_config,
)
from persai.config import Settings

SECRETS = {
    "llm_api_key": "sk-llm-secret-0001",
    "OPENAI_API_KEY": "sk-openai-secret-0002",
    "GEMINI_API_KEY": "gemini-secret-0003",
    "ANTHROPIC_API_KEY": "sk-ant-secret-0004",
}


def _settings(tmp_path: Path, **values: object) -> Settings:
    return Settings(stack_state_dir=tmp_path / "stack", **values)  # type: ignore[arg-type]


def _inference(config: dict[str, object]) -> dict[str, dict[str, object]]:
    providers = config["providers"]
    assert isinstance(providers, dict)
    return {p["provider_id"]: p for p in providers["inference"]}


@pytest.fixture(autouse=True)
def _no_provider_environment(monkeypatch: pytest.MonkeyPatch) -> None:
    for variable in ("OPENAI_API_KEY", "GEMINI_API_KEY", "ANTHROPIC_API_KEY"):
        monkeypatch.delenv(variable, raising=False)
    for variable in ("PERSAI_LLM_BASE_URL", "PERSAI_LLM_API_KEY"):
        monkeypatch.delenv(variable, raising=False)


def test_no_provider_is_a_clear_error(tmp_path: Path) -> None:
    settings = _settings(tmp_path)
    assert configured_providers(settings) == {}
    with pytest.raises(NoModelProvider, match="PERSAI_LLM_BASE_URL"):
        build_stack_config(settings)


def test_openai_compatible_endpoint_without_key(tmp_path: Path) -> None:
    settings = _settings(tmp_path, llm_base_url="http://127.0.0.1:9/v1")
    inference = _inference(build_stack_config(settings))
    assert configured_providers(settings) == {"llm": "remote::vllm"}
    assert inference["llm"]["provider_type"] == "remote::vllm"
    assert inference["llm"]["config"] == {"base_url": "http://127.0.0.1:9/v1"}
    assert stack_environment(settings) == {}


@pytest.mark.parametrize(
    ("values", "expected"),
    [
        ({"OPENAI_API_KEY": SECRETS["OPENAI_API_KEY"]}, {"openai"}),
        ({"GEMINI_API_KEY": SECRETS["GEMINI_API_KEY"]}, {"gemini"}),
        ({"ANTHROPIC_API_KEY": SECRETS["ANTHROPIC_API_KEY"]}, {"anthropic"}),
        (
            {"llm_base_url": "http://127.0.0.1:9/v1", **SECRETS},
            {"llm", "openai", "gemini", "anthropic"},
        ),
    ],
)
def test_each_provider_combination(
    tmp_path: Path, values: dict[str, object], expected: set[str]
) -> None:
    settings = _settings(tmp_path, **values)
    inference = _inference(build_stack_config(settings))
    assert set(inference) == expected == set(configured_providers(settings))
    for provider in inference.values():
        key = provider["config"].get("api_key") or provider["config"].get("api_token")  # type: ignore[attr-defined]
        assert isinstance(key, str)
        assert key.startswith("${env.")


def test_no_secret_in_clear_in_the_yaml(tmp_path: Path) -> None:
    settings = _settings(tmp_path, llm_base_url="http://127.0.0.1:9/v1", **SECRETS)
    path = write_stack_config(settings, tmp_path / "run.yaml")
    text = path.read_text()
    for secret in SECRETS.values():
        assert secret not in text
    environment = stack_environment(settings)
    assert environment == {
        "PERSAI_LLM_API_KEY": SECRETS["llm_api_key"],
        "OPENAI_API_KEY": SECRETS["OPENAI_API_KEY"],
        "GEMINI_API_KEY": SECRETS["GEMINI_API_KEY"],
        "ANTHROPIC_API_KEY": SECRETS["ANTHROPIC_API_KEY"],
    }
    for variable in environment:
        assert f"${{env.{variable}}}" in text


def test_state_lives_under_the_state_directory(tmp_path: Path) -> None:
    settings = _settings(tmp_path, llm_base_url="http://127.0.0.1:9/v1")
    path = write_stack_config(settings, tmp_path / "run.yaml", port=12345)
    config = yaml.safe_load(path.read_text())
    state = str((tmp_path / "stack").resolve())
    assert (tmp_path / "stack").is_dir()
    assert config["server"]["port"] == 12345
    assert {"inference", "responses"} <= set(config["apis"])
    for backend in config["storage"]["backends"].values():
        assert backend["db_path"].startswith(state)
    assert config["providers"]["vector_io"][0]["config"]["db_path"].startswith(state)
    assert config["providers"]["files"][0]["config"]["storage_dir"].startswith(state)


@pytest.mark.filterwarnings("ignore::DeprecationWarning")  # llama_stack's own image_name field
def test_llama_stack_accepts_the_config(tmp_path: Path) -> None:
    datatypes = pytest.importorskip("llama_stack.core.datatypes")
    settings = _settings(tmp_path, llm_base_url="http://127.0.0.1:9/v1", **SECRETS)
    parsed = datatypes.StackConfig(**build_stack_config(settings))
    assert [p.provider_id for p in parsed.providers["inference"]] == [
        "llm",
        "openai",
        "gemini",
        "anthropic",
    ]


def test_the_stack_runs_with_its_keys_and_a_tokenizer_cache(tmp_path: Path) -> None:
    settings = Settings(
        llm_base_url="http://llm:8000/v1", llm_api_key="k-1", stack_state_dir=tmp_path
    )
    environment = server_environment(settings)
    assert environment["PERSAI_LLM_API_KEY"] == "k-1"  # the config names it, never holds it
    cache = Path(environment["TIKTOKEN_CACHE_DIR"])
    assert cache == tmp_path / "tiktoken"
    assert cache.is_dir()
