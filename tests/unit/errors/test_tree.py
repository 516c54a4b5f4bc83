"""One exception tree: every error PersAI raises on purpose is in it, drawn where it is."""

from __future__ import annotations

import inspect
import re

import pytest
from fastapi import FastAPI
from fastapi.testclient import TestClient

from persai import errors
from persai.agent import tools
from persai.errors import exceptions


def _drawn() -> dict[str, int]:
    """Class name -> depth, as the tree in `exceptions`' docstring draws them."""
    tree = (exceptions.__doc__ or "").split("\n\n")[1]
    drawn = {}
    for line in tree.splitlines():
        match = re.match(r"^([│ ]*(?:[├└]── )?)([A-Z]\w+)", line)
        if match:
            drawn[match[2]] = len(match[1]) // 4
    return drawn


def test_every_error_class_is_drawn_under_its_base() -> None:
    drawn = _drawn()
    classes = [
        value
        for value in vars(exceptions).values()
        if isinstance(value, type) and issubclass(value, errors.PersAIError)
    ]
    assert {cls.__name__ for cls in classes} == set(drawn)
    for cls in classes:
        depth = len(cls.__mro__) - len(errors.PersAIError.__mro__)
        assert drawn[cls.__name__] == depth, cls.__name__
        assert getattr(errors, cls.__name__) is cls  # exported from persai.errors


def test_the_tools_errors_and_the_apis_have_names_of_their_own() -> None:
    def exception_names(module: object) -> set[str]:
        return {
            name
            for name in getattr(module, "__all__", [])
            if inspect.isclass(value := getattr(module, name)) and issubclass(value, Exception)
        }

    assert "ToolError" in exception_names(tools)
    assert not exception_names(tools) & exception_names(errors)


@pytest.mark.parametrize(
    ("error", "status"),
    [(errors.SealError("sealed credentials are in an unknown format"), 401)],
)
def test_an_error_of_the_tree_is_its_status_not_a_500(
    error: errors.PersAIError, status: int
) -> None:
    app = FastAPI()
    errors.install(app)

    @app.get("/")
    async def fail() -> None:
        raise error

    answer = TestClient(app).get("/")
    assert answer.status_code == status
    assert answer.json()["error"]["type"] == error.error_type
