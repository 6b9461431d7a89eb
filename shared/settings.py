"""Settings base shared by every service (pydantic-settings, one env prefix per service)."""

from __future__ import annotations

import os
from datetime import UTC, date, datetime
from typing import Any, ClassVar, Literal
from zoneinfo import ZoneInfoNotFoundError

from pydantic import Field, field_validator, model_validator
from pydantic_settings import BaseSettings, SettingsConfigDict

from shared.clock import BUREAU_TIME_ZONE, local_date

DEV_SECRET = "dev-only-insecure-secret-change-me"
# Secrets anyone can read in this repository (the dev default, the placeholder in deploy/k8s/secret.template.yaml).
PUBLIC_SECRETS = frozenset({"", DEV_SECRET, "CHANGE_ME"})
MIN_HS256_SECRET_BYTES = 32  # RFC 7518 §3.2: a key at least as long as the hash output

# Platform-wide variables, read when the service-prefixed one is absent (one DATABASE_URL can serve a dev stack).
_SHARED_ENV = {
    "database_url": "DATABASE_URL",
    "kafka_bootstrap_servers": "KAFKA_BOOTSTRAP_SERVERS",
    "topic_replication": "KAFKA_TOPIC_REPLICATION_FACTOR",
    "topic_min_insync": "KAFKA_TOPIC_MIN_INSYNC_REPLICAS",
    "env": "HSS_ENV",
    "jwt_secret": "HSS_JWT_SECRET",
    "jwt_jwks_url": "HSS_JWT_JWKS_URL",
    "jwt_issuer": "HSS_JWT_ISSUER",
    "http_host": "HSS_HTTP_HOST",
    "audit_retention_days": "HSS_AUDIT_RETENTION_DAYS",
    "topic_prefix": "HSS_TOPIC_PREFIX",
    "bureau_time_zone": "HSS_BUREAU_TIME_ZONE",
}


class ServiceSettings(BaseSettings):
    """Settings every service has; subclasses set `service_name` and an env prefix like `VISITS_`."""

    model_config = SettingsConfigDict(extra="ignore")
    service_name: ClassVar[str] = "service"

    env: Literal["dev", "test", "production"] = "dev"
    database_url: str = "postgresql://hss@127.0.0.1:55432/postgres"
    db_schema: str = ""
    db_pool_min: int = 2
    db_pool_max: int = 10
    db_acquire_timeout_seconds: float = 10.0  # a request waiting longer for a connection is answered 503
    db_migration_lock_timeout_seconds: float = 5.0
    shutdown_timeout_seconds: float = 10.0  # a task or the pool not stopped by then is abandoned (and logged)
    kafka_bootstrap_servers: str = "127.0.0.1:59092"
    topic_prefix: str = ""
    topic_partitions: int = 6
    topic_replication: int = 1
    # Writes with acks=all succeed only while this many replicas have them: 2 with 3 brokers (production), so an
    # acknowledged event survives the loss of any one broker; 1 with a single broker (dev, tests, the demo).
    topic_min_insync: int = 1
    http_host: str = "127.0.0.1"
    http_port: int = 8100
    http_max_body_bytes: int = 1024 * 1024  # routes that take more say so (shared.edges.max_body)
    jwt_secret: str = DEV_SECRET
    jwt_jwks_url: str = ""
    jwt_issuer: str = "hss-dev"
    jwt_audience: str = "hss-platform"
    relay_batch_size: int = 1000
    relay_poll_seconds: float = 1.0
    relay_ack_timeout_seconds: float = 30.0  # no acks from Kafka for this long: reconnect and resend
    relay_lock_keepalive_seconds: int = 10  # a leader gone without a word loses the relay lock within this
    outbox_gauge_seconds: float = 2.0
    consumer_max_attempts: int = 3
    consumer_retry_backoff_seconds: float = 0.2
    consumer_retry_max_backoff_seconds: float = 5.0  # transient database errors are retried forever, this apart
    consumer_batch_size: int = 1000
    consumer_parallelism: int = 2
    # Most bytes of fetched records a consumer holds before its application polls them (all partitions together).
    consumer_fetch_buffer_bytes: int = Field(default=16 * 1024 * 1024, ge=1024 * 1024)
    # How long audit rows of personal-data reads are kept (shared/audit.py); the purge is their only delete.
    audit_retention_days: int = Field(default=1825, ge=1)
    # The bureau's time zone (IANA): calendar dates — "today" against a campaign's plan, a birth date's upper
    # bound — are its local dates (shared.clock.local_date), not UTC's.
    bureau_time_zone: str = BUREAU_TIME_ZONE

    @model_validator(mode="before")
    @classmethod
    def _shared_env_fallback(cls, data: Any) -> Any:
        """Fill fields from unprefixed variables (DATABASE_URL, ...) when no prefixed one is set."""
        if not isinstance(data, dict):
            return data
        for name, var in _SHARED_ENV.items():
            if name not in data and var in os.environ:
                prefixed = f"{cls.model_config.get('env_prefix', '')}{name}".upper()
                if prefixed not in os.environ:
                    data[name] = os.environ[var]
        return data

    @field_validator("bureau_time_zone")
    @classmethod
    def _known_zone(cls, zone: str) -> str:
        """An IANA zone name the system's tz database knows (refused at start, not at the first date)."""
        try:
            local_date(datetime.now(UTC), zone)
        except (ZoneInfoNotFoundError, ValueError) as exc:
            raise ValueError(f"unknown time zone {zone!r} (an IANA name such as Asia/Shanghai)") from exc
        return zone

    def today(self, now: datetime) -> date:
        """The bureau's calendar date at `now` (the service's clock)."""
        return local_date(now, self.bureau_time_zone)

    @model_validator(mode="after")
    def _refuse_default_secret(self) -> ServiceSettings:
        """Refuse to run in production with a published or short HS256 secret (unless tokens come from a JWKS)."""
        if self.env == "production" and not self.jwt_jwks_url:
            if self.jwt_secret in PUBLIC_SECRETS:
                raise ValueError("jwt_secret must be set to a real secret (or jwt_jwks_url) in production")
            if len(self.jwt_secret.encode()) < MIN_HS256_SECRET_BYTES:
                raise ValueError(f"jwt_secret must have at least {MIN_HS256_SECRET_BYTES} bytes for HS256")
        if not self.db_schema:
            self.db_schema = self.service_name
        if not 1 <= self.topic_min_insync <= self.topic_replication:
            raise ValueError("topic_min_insync must be between 1 and topic_replication")
        return self

    def topic(self, name: str) -> str:
        """The physical topic name for a logical one (tests and shared clusters use a prefix)."""
        return f"{self.topic_prefix}{name}"
