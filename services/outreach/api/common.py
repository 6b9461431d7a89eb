"""What the routes share: the rules dependency."""

from __future__ import annotations

from typing import Annotated

from fastapi import Depends, Request

from services.outreach.settings import OutreachSettings
from services.outreach.settings import Rules as RulesModel


def get_rules(request: Request) -> RulesModel:
    """FastAPI dependency: the service's care rules."""
    settings: OutreachSettings = request.app.state.settings
    return settings.rules


Rules = Annotated[RulesModel, Depends(get_rules)]
