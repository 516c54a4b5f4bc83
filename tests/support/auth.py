"""PersAI with authentication on against the Perses stand-in, the credentials a client sends,
and the metrics PersAI exposes: what the authentication and hostile-input tests share."""

from __future__ import annotations

from collections.abc import Callable

from prometheus_client.parser import text_string_to_metric_families

from tests.support.persai import PersAIStack
from tests.support.perses import PersesStandin

SECRET_KEY = "integration-test-sealing-key-of-32-bytes-or-more"
StartStack = Callable[..., PersAIStack]
"""The `persai_stack` fixture: starts PersAI's processes with extra environment."""


def auth_env(perses: PersesStandin) -> dict[str, str]:
    """PersAI with authentication on against the stand-in; every datasource through Perses."""
    return {
        "PERSAI_AUTH": "true",
        "PERSES_API_URL": perses.base_url,
        "PERSAI_SECRET_KEY": SECRET_KEY,
        "PERSAI_DATASOURCES": "",
    }


def bearer(token: str) -> dict[str, str]:
    return {"Authorization": f"Bearer {token}"}


def cookie_header(values: dict[str, str]) -> dict[str, str]:
    return {"Cookie": "; ".join(f"{name}={value}" for name, value in values.items())}


def metric(text: str, name: str, **labels: str) -> float:
    """The value of one sample of Prometheus text exposition, 0 when absent."""
    for family in text_string_to_metric_families(text):
        for sample in family.samples:
            if sample.name == name and sample.labels == labels:
                return float(sample.value)
    return 0.0
