"""Each package shows what its __init__ exports, and everything it exports exists."""

import importlib

import pytest

PACKAGES = {
    "persai": {"Settings", "__version__"},
    "persai.server": {"create_app", "from_environment"},
    "persai.runtime": {"Engine", "JobRunner", "Services"},
    "worker": {"create_worker", "run_worker"},
}


@pytest.mark.parametrize("name", sorted(PACKAGES))
def test_public_exports_are_pinned(name: str) -> None:
    assert set(importlib.import_module(name).__all__) == PACKAGES[name]


@pytest.mark.parametrize(
    "name",
    [
        "persai",
        "persai.agent",
        "persai.agent.tools",
        "persai.agent.results",
        "persai.errors",
        "persai.eval",
        "persai.incidents",
        "persai.jobs",
        "persai.runtime",
        "persai.server",
        "worker",
    ],
)
def test_everything_exported_exists(name: str) -> None:
    module = importlib.import_module(name)
    assert module.__all__
    for exported in module.__all__:
        assert hasattr(module, exported), f"{name} exports {exported} but has none"


def test_errors_map_to_statuses() -> None:
    errors = importlib.import_module("persai.errors")
    statuses = {
        name: getattr(errors, name).status_code
        for name in errors.__all__
        if isinstance(getattr(errors, name), type)
    }
    assert statuses["NotFound"] == 404
    assert statuses["StoreUnavailable"] == 503
    assert statuses["TooManyRequests"] == 429
    assert statuses["UnknownModel"] == 400
    assert all(400 <= status < 600 for status in statuses.values())
