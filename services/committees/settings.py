"""Settings of the committees service (env prefix COMMITTEES_)."""

from __future__ import annotations

from typing import ClassVar

from pydantic_settings import SettingsConfigDict

from shared.settings import ServiceSettings


class Settings(ServiceSettings):
    """Committees settings."""

    service_name: ClassVar[str] = "committees"
    model_config = SettingsConfigDict(env_prefix="COMMITTEES_", extra="ignore")

    http_port: int = 8101
    import_max_errors_listed: int = 2000
    import_statement_timeout_seconds: float = 900.0
    # Online parent schools: the platform's page of a session when no meeting link is given, the minutes a guardian
    # must be connected to count as attending, and the share of held sessions that completes a parent school.
    online_join_base: str = "https://hss.localhost/parent-school/sessions"
    online_min_minutes: int = 20
    completion_share: float = 0.8
