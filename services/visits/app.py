"""Visits service: campaigns, assignments, visit records and findings."""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from services.visits import handlers
from services.visits.api import ROUTERS
from services.visits.settings import VisitsSettings
from services.visits.usecases.group_commit import VisitWriter
from shared import audit, directory
from shared.clock import Clock, SystemClock
from shared.contracts import visits as contracts
from shared.web import Runtime, ServiceSpec, create_app


@dataclass
class VisitsSpec(ServiceSpec):
    """The kit's spec plus the group-commit writer the single-visit route hands visits to."""

    writer: VisitWriter = field(default_factory=VisitWriter)


def build_spec(settings: VisitsSettings, clock: Clock | None = None) -> VisitsSpec:
    """The visits service: owns the visits topics, keeps a directory copy from committees' events; `clock` is
    injectable so tests can set the time."""
    writer = VisitWriter()
    clock = clock or SystemClock()

    async def visit_writer(runtime: Runtime) -> None:
        await writer.run(runtime.pool, runtime.clock)

    return VisitsSpec(
        writer=writer,
        clock=clock,
        background=[visit_writer, audit.purge_loop],
        settings=settings,
        migrations=Path(__file__).parent / "migrations",
        kit_migrations=[directory.MIGRATIONS],
        # Committees' topics are declared here too so the directory consumer can subscribe even when visits
        # starts first (the broker does not auto-create topics); creation is idempotent with committees'.
        topics=[
            contracts.CAMPAIGN,
            contracts.ASSIGNMENT,
            contracts.VISIT,
            contracts.FINDING,
            *handlers.CONSUMED_TOPICS,
        ],
        routers=[*ROUTERS, audit.reads_router("visits")],
        consumers=handlers.consumers(clock),
        title="visits service",
        description="Home-visit campaigns, teacher→family assignments, visit records and findings.",
    )


def create(settings: VisitsSettings | None = None, clock: Clock | None = None) -> Any:
    """The FastAPI app."""
    return create_app(build_spec(settings or VisitsSettings(), clock))
