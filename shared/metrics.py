"""Prometheus metrics with the names every service shares (base units, `_total`, no ids as labels)."""

from __future__ import annotations

from prometheus_client import Counter, Gauge, Histogram

HTTP_REQUESTS = Counter("http_requests_total", "HTTP requests handled.", ["service", "method", "route", "status"])
HTTP_DURATION = Histogram(
    "http_request_duration_seconds",
    "HTTP request duration.",
    ["service", "method", "route"],
    buckets=(0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10),
)
EVENTS_PUBLISHED = Counter("events_published_total", "Events the relay published to Kafka.", ["service", "topic"])
EVENTS_CONSUMED = Counter(
    "events_consumed_total",
    "Events a consumer group took from Kafka, by outcome.",
    ["service", "group", "topic", "outcome"],
)
EVENTS_DEAD_LETTERED = Counter(
    "events_dead_lettered_total", "Events sent to a dead-letter topic.", ["service", "group", "topic"]
)
HANDLER_DURATION = Histogram(
    "event_handler_duration_seconds",
    "Time to apply one event in its database transaction.",
    ["service", "group", "event_type"],
    buckets=(0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 1),
)
CONSUMER_LAG = Gauge(
    "kafka_consumer_lag_messages", "Messages not yet consumed by a group.", ["service", "group", "topic"]
)
# Read from the database by every replica on its own schedule: true while Kafka is down and on standby replicas.
OUTBOX_PENDING = Gauge(
    "outbox_pending_events",
    "Committed outbox rows not yet published to Kafka (above 10,000: the span of their ids, an upper bound).",
    ["service"],
)
OUTBOX_OLDEST_AGE = Gauge("outbox_oldest_age_seconds", "Age of the oldest unpublished outbox row.", ["service"])
RELAY_LEADER = Gauge("outbox_relay_leader", "1 while this replica holds the relay lock and publishes.", ["service"])
