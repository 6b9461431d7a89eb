"""Routes of the checklist and guidance-topic vocabularies."""

from __future__ import annotations

from typing import Any

from fastapi import APIRouter

from services.visits.domain import checklist
from services.visits.schemas import ChecklistOut, GuidanceTopics
from shared.auth import CurrentPrincipal
from shared.problems import not_found

router = APIRouter(prefix="/api/v1", tags=["checklists"])


@router.get("/guidance-topics", response_model=GuidanceTopics)
async def list_guidance_topics(principal: CurrentPrincipal) -> Any:
    """The guidance topics a visit may record, by code, with Chinese and English labels."""
    return {"items": [{"code": t.id, "zh": t.zh, "en": t.en} for t in checklist.guidance_topics().values()]}


@router.get("/checklists/{version}", response_model=ChecklistOut)
async def get_checklist(version: str, principal: CurrentPrincipal) -> Any:
    """The Ten Requirements of a version (`current` for the one in force), with Chinese and English labels."""
    config = checklist.load()
    version = config.current if version == "current" else version
    if version not in config.versions:
        raise not_found("checklist version")
    return {"version": version, "items": [i.__dict__ for i in config.items(version)]}
