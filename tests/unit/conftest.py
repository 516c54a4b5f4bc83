"""Fixtures shared by the unit tests."""

from collections.abc import Iterator

import pytest

from tests.support.perses import PersesStandin


@pytest.fixture
def anyio_backend() -> str:
    """Async tests (`pytest.mark.anyio`) run on asyncio, as PersAI does."""
    return "asyncio"


@pytest.fixture
def perses() -> Iterator[PersesStandin]:
    """The Perses stand-in with alice (who may read project shop) and bob (who may not)."""
    standin = PersesStandin()
    standin.add_user("alice", "alice-password", projects={"shop"})
    standin.add_user("bob", "bob-password")
    with standin:
        yield standin
