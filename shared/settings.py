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
DEV_ISSUER = "hss-dev"  # the `iss` of dev tokens (shared.auth.issue_token)

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
    "auth_dev_tokens": "HSS_AUTH_DEV_TOKENS",
    "http_host": "HSS_HTTP_HOST",
    "audit_retention_days": "HSS_AUDIT_RETENTION_DAYS",
    "topic_prefix": "HSS_TOPIC_PREFIX",
    "bureau_time_zone": "HSS_BUREAU_TIME_ZONE",
    "db_migrate_at_start": "HSS_DB_MIGRATE_AT_START",
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
    # False where the service logs in as a role without DDL rights (production): the migrations are run before it
    # by `python -m services.<name> migrate` as the schema's owner, and the service only checks they are all applied.
    db_migrate_at_start: bool = True
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
    # Admission control (shared.admission): requests in progress at once (0: no limit), how many more may wait their
    # turn, and for how long; any other is answered 503 with Retry-After. A bound for overload, not a tuning knob:
    # most of visits' requests in progress only wait for the group commit. 32 was tried under a campaign's 96
    # connections (`bench/campaign.py --scale 0.05`, two runs at load 5-11: 134 and 161 visits/s accepted, finding →
    # case p99 901 and 653 ms; main 331 and 176 visits/s, 745 and 1,065 ms at load 3-8 and 10-16): no clear gain.
    http_max_in_flight: int = Field(default=256, ge=0)
    http_max_queued: int = Field(default=1000, ge=0)
    http_queue_wait_seconds: float = Field(default=10.0, gt=0)
    # Bearer tokens (shared.auth.Verifier). Two kinds, each accepted only when configured, never one in place of the
    # other: the identity provider's (RS256/ES256, verified with its JWKS at `jwt_jwks_url`, `iss` = `jwt_issuer`)
    # and dev tokens (HS256 with `jwt_secret`, `iss` = hss-dev, minted by `python -m shared.auth`). Dev tokens are on
    # in dev and test unless `auth_dev_tokens` says otherwise, and refused at start in production, which verifies the
    # provider's tokens only.
    jwt_jwks_url: str = ""
    jwt_issuer: str = ""
    jwt_audience: str = "hss-platform"
    auth_dev_tokens: bool | None = None  # None: on in dev and test, off in production
    jwt_secret: str = DEV_SECRET
    # Rows a relay reads, sends and deletes at a time. Each batch costs PostgreSQL about the same whatever its size
    # (the walk from the lower bound over rows deleted moments ago, the delete's transaction): 60 k ~1 KB rows over
    # 18 partitions cost it 50 CPU-µs a row in batches of 1,000 and 10-14 in batches of 5,000 (issue 16); larger
    # ones fill a partition's 512 KB Kafka batch and wait for the one before it to be sent.
    relay_batch_size: int = 5000
    relay_poll_seconds: float = 1.0
    # An idle relay's poll backs off to this: NOTIFY (the outbox's statement trigger) wakes it at every commit, and
    # each poll walks the rows of any transaction still open (a city import's 400 k: 8-20 s of database time).
    relay_idle_max_seconds: float = 30.0
    relay_ack_timeout_seconds: float = 30.0  # no acks from Kafka for this long: reconnect and resend
    relay_lock_keepalive_seconds: int = 10  # a leader gone without a word loses the relay lock within this
    outbox_gauge_seconds: float = 2.0
    # Every this many seconds the process gives glibc's free pages back to the system (shared.memory; 0 = never):
    # without it the resident memory kept each burst's high-water mark (soak, issue 12).
    memory_trim_seconds: float = Field(default=30.0, ge=0)
    consumer_max_attempts: int = 3
    consumer_retry_backoff_seconds: float = 0.2
    consumer_retry_max_backoff_seconds: float = 5.0  # transient database errors are retried forever, this apart
    consumer_batch_size: int = 1000
    consumer_copy_batch_size: int = 5000  # a copying subscription's poll (`shared.inbox.Facts`), one transaction
    consumer_parallelism: int = 2
    # Most bytes of fetched records a consumer holds before its application polls them (all partitions together).
    consumer_fetch_buffer_bytes: int = Field(default=16 * 1024 * 1024, ge=1024 * 1024)
    # The broker answers a consumer's fetch once this many bytes are there for it, or after the wait below. 1 (the
    # default) answers at once: each reaction starts as soon as its event is there. A group whose work may wait
    # (reporting's projection) sets more, and applies fewer, larger polls: fewer transactions and fetches per event.
    consumer_fetch_min_bytes: int = Field(default=1, ge=1)
    # With 1 byte the wait only holds fetches of partitions that have nothing new, and aiokafka sends one fetch per
    # broker at a time: while a poll longer than its prefetch backoff (100 ms) still holds a busy partition's
    # records, it fetches the idle partitions alone, and the busy one, drained meanwhile, waits for that fetch to
    # come back. Half the consumer's own poll (200 ms) keeps a group catching up from ever polling empty: at 500 ms
    # outreach's directory copy stood idle ~40 % of its time (issue 16). An idle group fetches ten times a second.
    consumer_fetch_max_wait_ms: int = Field(default=100, ge=0, le=10_000)
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
    def _token_kinds(self) -> ServiceSettings:
        """Which bearer tokens are accepted, decided at start: production takes the identity provider's only."""
        if self.auth_dev_tokens is None:
            self.auth_dev_tokens = self.env != "production"
        if self.env == "production":
            if self.auth_dev_tokens:
                raise ValueError("auth_dev_tokens: dev tokens are never accepted in production")
            if not self.jwt_jwks_url:
                raise ValueError("jwt_jwks_url: production verifies the identity provider's tokens (HSS_JWT_JWKS_URL)")
        if self.jwt_jwks_url and not self.jwt_issuer:
            raise ValueError("jwt_issuer: the identity provider's issuer must be set with jwt_jwks_url")
        if not self.auth_dev_tokens and not self.jwt_jwks_url:
            raise ValueError("auth_dev_tokens is off and no jwt_jwks_url is set: no bearer token could be verified")
        return self

    @model_validator(mode="after")
    def _defaults(self) -> ServiceSettings:
        """The schema defaults to the service's name; min ISR within the replication factor."""
        if not self.db_schema:
            self.db_schema = self.service_name
        if not 1 <= self.topic_min_insync <= self.topic_replication:
            raise ValueError("topic_min_insync must be between 1 and topic_replication")
        return self

    def topic(self, name: str) -> str:
        """The physical topic name for a logical one (tests and shared clusters use a prefix)."""
        return f"{self.topic_prefix}{name}"
