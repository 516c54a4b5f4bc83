"""compose.yaml, the Dockerfile and the Procfile name only things that exist."""

from __future__ import annotations

import importlib
import shlex
import shutil
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest
import yaml

from persai.cli import parser
from persai.config import Settings

ROOT = Path(__file__).resolve().parents[2]
COMPOSE = yaml.safe_load((ROOT / "compose.yaml").read_text())
SERVICES: dict[str, dict[str, Any]] = COMPOSE["services"]
IMAGES = {"redis:7.4-alpine", "prom/prometheus:v2.53.2", "prom/alertmanager:v0.25.0"}
STACK_ONLY_VARIABLES = {"TIKTOKEN_CACHE_DIR"}


def settings_variables() -> set[str]:
    names = set()
    for name, field in Settings.model_fields.items():
        alias = field.validation_alias
        names.add(alias if isinstance(alias, str) else f"PERSAI_{name.upper()}")
    return names


def command_of(service: dict[str, Any]) -> list[str]:
    command = service.get("entrypoint") or service.get("command") or []
    return shlex.split(command) if isinstance(command, str) else list(command)


def test_every_service_runs_a_pinned_image_or_this_projects_dockerfile() -> None:
    for name, service in SERVICES.items():
        if "build" in service:
            assert service["build"] == "."
            assert (ROOT / "Dockerfile").exists()
        else:
            assert service["image"] in IMAGES, name


PERSAI_SERVICES = [n for n, s in SERVICES.items() if command_of(s)[:1] == ["persai"]]


@pytest.mark.parametrize("name", PERSAI_SERVICES)
def test_persai_commands_exist(name: str) -> None:
    parser().parse_args(command_of(SERVICES[name])[1:])


def test_uvicorn_factories_exist() -> None:
    procfile = dict(
        line.split(": ", 1) for line in (ROOT / "Procfile").read_text().splitlines() if line
    )
    commands = [command_of(s) for s in SERVICES.values() if command_of(s)[:1] == ["uvicorn"]]
    commands.append(shlex.split(procfile["web"]))
    for command in commands:
        target = command[command.index("--factory") + 1]
        module, _, attribute = target.partition(":")
        assert callable(getattr(importlib.import_module(module), attribute))
    assert parser().parse_args(shlex.split(procfile["worker"])[1:]).command == "worker"


def test_llama_stack_command_is_installed_and_reads_the_generated_config() -> None:
    command = command_of(SERVICES["llama-stack"])
    assert command[:3] == ["llama", "stack", "run"]
    assert Path(sys.executable).with_name("llama").exists()
    generated = command_of(SERVICES["stack-config"])
    assert generated[generated.index("--output") + 1] == command[3]


def test_environment_variables_are_settings_persai_reads() -> None:
    known = settings_variables()
    for name, service in SERVICES.items():
        variables = set(service.get("environment", {}))
        extra = STACK_ONLY_VARIABLES if name == "llama-stack" else set()
        assert variables <= known | extra, (name, variables - known - extra)


def test_redis_is_persistent_and_never_evicts() -> None:
    command = command_of(SERVICES["redis"])
    assert command[command.index("--appendonly") + 1] == "yes"
    assert command[command.index("--maxmemory-policy") + 1] == "noeviction"
    assert any(v.endswith(":/data") for v in SERVICES["redis"]["volumes"])


def test_volumes_are_declared_and_workers_scale() -> None:
    declared = set(COMPOSE["volumes"])
    for service in SERVICES.values():
        for volume in service.get("volumes", []):
            assert volume.split(":")[0] in declared
    worker = SERVICES["worker"]
    assert "ports" not in worker  # so that --scale worker=N works
    assert "container_name" not in worker


@pytest.mark.skipif(shutil.which("prometheus") is None, reason="prometheus not installed")
def test_prometheus_flags_exist() -> None:
    shown = subprocess.run(["prometheus", "--help"], capture_output=True, text=True, check=False)
    help_text = shown.stdout + shown.stderr
    for flag in command_of(SERVICES["prometheus"]):
        assert flag.split("=")[0] in help_text
    promtool = command_of(SERVICES["demo-backfill"])
    assert promtool[:4] == ["promtool", "tsdb", "create-blocks-from", "openmetrics"]


def test_readme_documents_the_procfile_commands() -> None:
    readme = (ROOT / "README.md").read_text()
    for line in (ROOT / "Procfile").read_text().splitlines():
        if line:
            assert line.split(": ", 1)[1] in readme


def test_readme_lists_every_setting() -> None:
    readme = (ROOT / "README.md").read_text()
    missing = sorted(v for v in settings_variables() if f"`{v}`" not in readme)
    assert not missing
