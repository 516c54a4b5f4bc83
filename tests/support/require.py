"""The one rule for what a test needs installed: skip here, saying what to install, but fail
under CI=true (where everything must run)."""

from __future__ import annotations

import os
from typing import NoReturn

import pytest

from persai.launcher import MissingBinary, which


def under_ci() -> bool:
    return os.environ.get("CI", "").lower() == "true"


def missing(message: str) -> NoReturn:
    """Skip the test with `message`, or fail it under CI=true."""
    if under_ci():
        pytest.fail(message)
    pytest.skip(message)


def require(binary: str, hint: str) -> str:
    """The path of `binary`; skips the test when it is missing (fails under CI=true)."""
    try:
        return which(binary, hint)
    except MissingBinary as exc:
        missing(str(exc))
