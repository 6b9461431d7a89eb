"""Wiring of the committees service: routes, owned topics, the import job runner."""

from __future__ import annotations

from pathlib import Path
from typing import Any

from services.committees.api import (
    committees,
    families,
    imports,
    lecturers,
    online,
    org_units,
    parent_schools,
    staff,
    students,
    teams,
)
from services.committees.settings import Settings
from services.committees.usecases.import_jobs import runner_for
from shared import audit
from shared.clock import Clock, SystemClock
from shared.contracts import committees as contracts
from shared.web import Runtime, ServiceSpec, create_app

TOPICS = [
    contracts.ORG,
    contracts.STAFF,
    contracts.STUDENT,
    contracts.FAMILY,
    contracts.COMMITTEE,
    contracts.PARENT_SCHOOL,
    contracts.TEAM,
    contracts.LECTURE,
    contracts.LECTURER,
]


def build_spec(settings: Settings, clock: Clock | None = None) -> ServiceSpec:
    """The committees service: directory, imports and cooperation structure; it consumes nothing."""
    clock = clock or SystemClock()

    async def import_jobs(runtime: Runtime) -> None:
        await runner_for(settings, runtime.clock).serve(runtime.pool)

    return ServiceSpec(
        settings=settings,
        clock=clock,
        migrations=Path(__file__).parent / "migrations",
        topics=TOPICS,
        routers=[
            org_units.router,
            staff.router,
            students.router,
            families.router,
            imports.router,
            committees.router,
            parent_schools.router,
            online.router,
            teams.router,
            lecturers.router,
            audit.reads_router("committees"),
        ],
        background=[import_jobs, audit.purge_loop],
        title="committees service",
        description="The org directory (org units, staff, students, families) and the home–school cooperation "
        "structure (parent committees, parent schools, instructor teams, lecturers and lectures).",
    )


def create(settings: Settings | None = None, clock: Clock | None = None) -> Any:
    """The FastAPI app."""
    return create_app(build_spec(settings or Settings(), clock))
