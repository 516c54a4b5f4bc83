"""The generated Llama Stack run config, read by another server in its own environment: OGX
validates the same file with `ogx run --dry-run` (a process of its own, hence here)."""

from __future__ import annotations

import os
import subprocess
from pathlib import Path

import pytest
import yaml

from persai.agent.stack_config import stack_environment, write_stack_config
from persai.config import Settings
from tests.support.llama_stack import ogx_binary, require_llama_stack

SECRETS = {
    "llm_api_key": "sk-llm-secret-0001",
    "OPENAI_API_KEY": "sk-openai-secret-0002",
    "GEMINI_API_KEY": "gemini-secret-0003",
    "ANTHROPIC_API_KEY": "sk-ant-secret-0004",
}


def test_ogx_accepts_the_config(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """OGX (in its own environment) validates the same file: `ogx run --dry-run`."""
    require_llama_stack("ogx")  # skips without the OGX environment; fails in CI
    binary = ogx_binary()
    assert binary is not None
    for provider in ("OPENAI", "GEMINI", "ANTHROPIC"):  # only these settings' providers
        monkeypatch.delenv(f"{provider}_API_KEY", raising=False)
    url = "http://127.0.0.1:9/v1"
    settings = Settings(stack_state_dir=tmp_path / "stack", llm_base_url=url, **SECRETS)  # type: ignore[arg-type]
    path = write_stack_config(settings, tmp_path / "run.yaml")
    checked = subprocess.run(
        [binary, "run", str(path), "--dry-run"],
        env={**os.environ, **stack_environment(settings)},
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
    )
    assert checked.returncode == 0, checked.stderr
    assert "Migrating" not in checked.stderr  # nothing in it is a legacy form for OGX
    validated = yaml.safe_load(checked.stdout)  # the config as OGX read it, keys redacted
    assert [p["provider_id"] for p in validated["providers"]["inference"]] == [
        "llm",
        "openai",
        "gemini",
        "anthropic",
    ]
    assert validated["server"]["port"] == 8321
