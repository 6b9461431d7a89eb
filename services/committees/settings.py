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
