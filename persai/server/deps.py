"""Dependencies of the routes, as `Annotated` aliases so that a route's signature reads as prose."""

from __future__ import annotations

from typing import Annotated

from fastapi import Depends, Query, Request

from persai.server.auth import Principal
from persai.server.state import AppState


async def get_state(request: Request) -> AppState:  # async: no trip through the thread pool
    state: AppState = request.app.state.persai
    return state


State = Annotated[AppState, Depends(get_state)]


async def get_principal(request: Request, state: State) -> Principal:
    """The caller, as Perses confirmed them (or the anonymous user when auth is off)."""
    return await state.authenticator.authenticate(request)


CurrentUser = Annotated[Principal, Depends(get_principal)]
Limit = Annotated[int, Query(ge=1, le=100, description="Items per page.")]
Offset = Annotated[int, Query(ge=0, le=100_000, description="Items to skip.")]
