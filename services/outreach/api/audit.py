"""Audit log route for auditors."""

from __future__ import annotations

from datetime import datetime
from typing import Annotated, Any, Literal

from fastapi import APIRouter, Query

from services.outreach.api.common import page
from services.outreach.schemas import AuditEntry
from services.outreach.store import audit
from shared.auth import CurrentPrincipal, Role
from shared.web import Pool


def router() -> APIRouter:
    r = APIRouter(prefix="/api/v1/audit", tags=["audit"])

    @r.get("/reads", response_model=list[AuditEntry])
    async def reads(
        principal: CurrentPrincipal,
        pool: Pool,
        resource_type: Literal["case", "referral"] | None = None,
        resource_id: str | None = None,
        subject: str | None = None,
        student_id: str | None = None,
        since: datetime | None = None,
        until: datetime | None = None,
        limit: Annotated[int, Query(ge=1, le=1000)] = 100,
        offset: Annotated[int, Query(ge=0)] = 0,
    ) -> Any:
        """Who read which case or referral detail, when and in which role (newest first); auditors only."""
        principal.require(Role.AUDITOR)
        limit, offset = page(limit, offset)
        rows = await audit.query(
            pool,
            resource_type=resource_type,
            resource_id=resource_id,
            subject=subject,
            student_id=student_id,
            since=since,
            until=until,
            limit=limit,
            offset=offset,
        )
        return [dict(x) for x in rows]

    return r
