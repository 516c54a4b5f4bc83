"""`GET /api/v1/investigations/{id}/dashboard`: an investigation's charts as a Perses dashboard."""

from __future__ import annotations

from typing import Annotated, Any

from fastapi import APIRouter, Query

from persai.dashboards import dashboard_for
from persai.server.deps import CurrentUser, State
from persai.server.investigations import JobId
from persai.server.schemas import ERROR_RESPONSES

router = APIRouter(prefix="/api/v1", responses=ERROR_RESPONSES)

# Perses resource names (perses/spec go/common ValidateID), as persai.datasources reads them
PROJECT_PATTERN = r"^[A-Za-z0-9_-](?:[A-Za-z0-9_.-]{0,73}[A-Za-z0-9_-])?$"
Project = Annotated[
    str | None,
    Query(
        pattern=PROJECT_PATTERN,
        description="The project to save it in; default: the project of its datasource.",
    ),
]


@router.get("/investigations/{job_id}/dashboard")
async def investigation_dashboard(
    user: CurrentUser, job_id: JobId, state: State, project: Project = None
) -> dict[str, Any]:
    """The investigation's range queries as a Perses dashboard (`dashboard`, ready for
    `POST /api/v1/projects/{project}/dashboards` with the user's own rights), each drawn over
    the window it queried (`window`, also a link of the dashboard); 409 while it has none."""
    job = await state.store.get_for(user.user, job_id)
    return dashboard_for(job, project)
