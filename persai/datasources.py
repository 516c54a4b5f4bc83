"""Datasource paths: the only way a client names where data comes from.

A client gives a Perses datasource proxy path; it never supplies a URL. The path resolves to
Perses's proxy (with the user's token), or, for running without Perses, to a Prometheus that the
operator configured by name (`PERSAI_DATASOURCES`), reached as `/proxy/globaldatasources/{name}`.

Perses served under a path prefix (its `api_prefix`, the path of PERSES_API_URL) builds proxy
paths as `{api_prefix}/proxy/...` (perses ui/app/src/model/datasource-api.ts), and the plugins
pass them on as they are: such a path is accepted with the prefix or without it, and kept
without it.
"""

from __future__ import annotations

import re
from dataclasses import dataclass

from persai.config import Settings
from persai.errors import InvalidRequest

# Perses resource names: letters, digits, `_`, `.`, `-`, at most 75, neither starting nor
# ending with `.` (perses/spec go/common ValidateID, called by perses pkg/model/api/v1/metadata.go)
_NAME = r"[A-Za-z0-9_-](?:[A-Za-z0-9_.-]{0,73}[A-Za-z0-9_-])?"
_SHAPES = (
    re.compile(rf"/proxy/globaldatasources/(?P<name>{_NAME})"),
    re.compile(rf"/proxy/projects/(?P<project>{_NAME})/datasources/(?P<name>{_NAME})"),
    re.compile(
        rf"/proxy/projects/(?P<project>{_NAME})/dashboards/(?P<dashboard>{_NAME})"
        rf"/datasources/(?P<name>{_NAME})"
    ),
)
MAX_PATH_LENGTH = 512


@dataclass(frozen=True)
class DatasourcePath:
    """A validated proxy path and what it names."""

    path: str
    name: str
    project: str | None = None
    dashboard: str | None = None


def parse_datasource(path: str, api_prefix: str = "") -> DatasourcePath:
    """Validate a datasource proxy path, with Perses's `api_prefix` in front of it or not, or
    raise InvalidRequest saying what shape it must have."""
    candidate = path.rstrip("/") if len(path) > 1 else path
    prefix = api_prefix.rstrip("/")
    if prefix and candidate.startswith(prefix + "/proxy/"):
        candidate = candidate[len(prefix) :]
    if len(candidate) <= MAX_PATH_LENGTH:
        for shape in _SHAPES:
            if match := shape.fullmatch(candidate):
                return DatasourcePath(path=candidate, **match.groupdict())
    raise InvalidRequest(
        f"datasource must be a Perses proxy path: {prefix}/proxy/globaldatasources/{{name}}, "
        f"{prefix}/proxy/projects/{{project}}/datasources/{{name}} or "
        f"{prefix}/proxy/projects/{{project}}/dashboards/{{dashboard}}/datasources/{{name}}, "
        "each name of letters, digits, '_', '.' and '-' (not first or last), at most 75"
    )


@dataclass(frozen=True)
class Endpoint:
    """Where requests for a datasource go, and whether the user's token goes with them."""

    base_url: str
    via_perses: bool


def resolve(datasource: DatasourcePath, settings: Settings) -> Endpoint:
    """The endpoint for a datasource: a configured direct Prometheus, else Perses's proxy.

    A direct datasource is queried without the user's token, so Perses's permissions do not
    apply to it: with authentication through Perses it is used only where the operator said so
    (PERSAI_DIRECT_DATASOURCES_WITH_PERSES); otherwise the name goes to Perses like any other.
    """
    perses_decides = settings.auth and settings.perses_api_url is not None
    direct = not perses_decides or settings.direct_datasources_with_perses
    if direct and datasource.project is None and datasource.name in settings.datasources:
        return Endpoint(str(settings.datasources[datasource.name]).rstrip("/"), via_perses=False)
    if settings.perses_api_url is not None:
        return Endpoint(str(settings.perses_api_url).rstrip("/") + datasource.path, True)
    known = ", ".join(sorted(settings.datasources)) or "none"
    raise InvalidRequest(
        f"unknown datasource {datasource.path!r}: PERSES_API_URL is not set and the configured "
        f"datasources are: {known}"
    )
