"""What the routes share: the rules dependency and paging bounds."""

from __future__ import annotations

from typing import Annotated

from fastapi import Depends, Query, Request

from services.outreach.settings import OutreachSettings
from services.outreach.settings import Rules as RulesModel


def get_rules(request: Request) -> RulesModel:
    """FastAPI dependency: the service's care rules."""
    settings: OutreachSettings = request.app.state.settings
    return settings.rules


Rules = Annotated[RulesModel, Depends(get_rules)]

MAX_OFFSET = 1_000_000  # deeper pages are not a use case; the bound keeps the value inside PostgreSQL's bigint
Offset = Annotated[int, Query(ge=0, le=MAX_OFFSET)]
Limit = Annotated[int, Query(ge=1, le=500)]
