"""Settings of the reporting service (env prefix REPORTING_)."""

from __future__ import annotations

from typing import ClassVar

from pydantic import Field
from pydantic_settings import SettingsConfigDict

from shared.settings import ServiceSettings


class ReportingSettings(ServiceSettings):
    """Reporting: read models, refresh cadence and the owners' APIs for the consistency check."""

    service_name: ClassVar[str] = "reporting"
    model_config = SettingsConfigDict(env_prefix="REPORTING_", extra="ignore")

    http_port: int = 8104
    consumer_group: str = "reporting.projections"
    # The projection may wait: the broker holds each of its fetches until a MiB is there (or half a second
    # passed), so a campaign's events are applied hundreds to a transaction, not a few dozen.
    consumer_fetch_min_bytes: int = Field(default=1024 * 1024, ge=1)
    consumer_fetch_max_wait_ms: int = Field(default=500, ge=0, le=10_000)
    refresh_interval_seconds: float = 1.0
    # A refresh that took long (a launch's assignments, a backlog) is followed by a wait that keeps refreshing under
    # this share of the time, but never longer than refresh_max_wait_seconds: a refresh costs what changed since the
    # last one, so a longer wait only makes the next refresh longer (and the figures lag more), not the work less.
    refresh_max_share: float = Field(default=0.1, gt=0, le=1)
    refresh_max_wait_seconds: float = Field(default=5.0, ge=0)
    gauges_interval_seconds: float = 15.0
    summary_cache_seconds: float = 1.0  # answers may be this much older than the last refresh
    visits_url: str = "http://127.0.0.1:8102"
    outreach_url: str = "http://127.0.0.1:8103"
    committees_url: str = "http://127.0.0.1:8101"
    # The rebuild's bulk replay: its partitions split between this many processes (usecases/rebuild.py).
    rebuild_processes: int = Field(default=2, ge=1)
