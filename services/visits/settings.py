"""Settings of the visits service (env prefix VISITS_)."""

from __future__ import annotations

from typing import ClassVar

from pydantic_settings import SettingsConfigDict

from shared.settings import ServiceSettings


class VisitsSettings(ServiceSettings):
    """Visits settings: the kit's plus the campaign defaults."""

    model_config = SettingsConfigDict(env_prefix="VISITS_", extra="ignore")
    service_name: ClassVar[str] = "visits"

    http_port: int = 8102
    default_target_per_teacher: int = 10
