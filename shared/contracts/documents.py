"""The event contracts as documents: a JSON Schema per published event type and the AsyncAPI document.

`python -m tools.docs` writes them to `docs/schemas/<type>.json` and `docs/asyncapi.yaml` (`--check`: fail when stale
or when a published `.vN` changed incompatibly). The consumer groups come from the caller: the kit imports no service.
"""

from __future__ import annotations

from typing import Any

import shared.contracts  # noqa: F401  (registers every contract)
from shared.contracts.common import Department, describe
from shared.devstack import departments
from shared.devstack.stack import DEFAULT_KAFKA_PORT
from shared.events import Envelope, EventSpec, registry
from shared.settings import ServiceSettings


def published() -> list[EventSpec]:
    """The contracts of the services (tests and benches register private types too; those are not published)."""
    return [s for s in registry.all() if s.model.__module__.startswith("shared.contracts.")]


def schema_of(spec: EventSpec) -> dict[str, Any]:
    """The JSON Schema of one event type's payload."""
    doc = spec.model.model_json_schema()
    doc["$id"] = spec.dataschema
    doc["title"] = spec.type
    doc["x-topic"] = spec.topic
    doc["x-key"] = spec.key_field
    doc["x-public"] = spec.public
    return doc


KAFKA_BINDING = "0.5.0"
TRACEPARENT = r"^[0-9a-f]{2}-[0-9a-f]{32}-[0-9a-f]{16}-[0-9a-f]{2}$"
# What the relay (shared/relay.py `_headers`) and the inbox (`_dead_letter`) really put on records.
EVENT_HEADERS: dict[str, Any] = {
    "type": "object",
    "description": "Kafka record headers of every event. No `ce_*` header: the value is a structured-mode CloudEvent.",
    "required": ["content-type", "traceparent", "hss-event-type"],
    "properties": {
        "content-type": {"type": "string", "const": "application/cloudevents+json"},
        "traceparent": {"type": "string", "pattern": TRACEPARENT, "description": "W3C trace context of the write"},
        "hss-event-type": {"type": "string", "description": "The CloudEvents `type` again: a routing hint"},
    },
}
DEAD_LETTER_HEADERS: dict[str, Any] = {
    "type": "object",
    "description": "The original record's headers (if any) plus where it came from and why it was parked.",
    "required": [
        "dlt.error",
        "dlt.attempts",
        "dlt.original.topic",
        "dlt.original.partition",
        "dlt.original.offset",
        "dlt.consumer.group",
    ],
    "properties": {
        **EVENT_HEADERS["properties"],
        "dlt.error": {"type": "string", "maxLength": 2000, "description": "`poison: ...` or the last handler error"},
        "dlt.attempts": {"type": "string", "pattern": "^[0-9]+$", "description": "How often it was tried"},
        "dlt.original.topic": {"type": "string"},
        "dlt.original.partition": {"type": "string", "pattern": "^[0-9]+$"},
        "dlt.original.offset": {"type": "string", "pattern": "^[0-9]+$"},
        "dlt.consumer.group": {"type": "string"},
    },
}
TAGS = {
    "public": "Other departments may subscribe: ids and facts only, no personal data of minors.",
    "internal": "Between the platform's own services only.",
    "dead-letter": "Records a consumer group could not apply, for operators.",
}


def _ident(text: str) -> str:
    """An AsyncAPI component/channel id for a dotted name."""
    return text.replace(".", "_").replace("{", "").replace("}", "")


PARAMETER_LABELS = {"department": Department.labels()}  # the zh/en labels of each topic parameter's values


def _parameters(spec: EventSpec) -> dict[str, Any]:
    """A templated topic (`outreach.referral.{department}.events`) is one channel with a parameter per value."""
    param = spec.topic_param
    if param is None:
        return {}
    at = spec.topic.split(".").index(f"{{{param}}}")
    parameter = {
        "enum": [t.split(".")[at] for t in spec.topics],
        "description": f"One topic per {param}; each {param} may read only its own (broker ACLs, "
        "deploy/kafka/README.md).",
    }
    describe(parameter, PARAMETER_LABELS[param])
    return {"parameters": {param: parameter}}


def payload_schemas() -> dict[str, Any]:
    """`components/schemas`: every payload by event type, and the enums and models they share, refs rewritten."""
    schemas: dict[str, Any] = {}
    for spec in published():
        doc = spec.model.model_json_schema(ref_template="#/components/schemas/{model}")
        for name, sub in doc.pop("$defs", {}).items():
            if schemas.setdefault(name, sub) != sub:
                raise ValueError(f"two different schemas are both named {name!r}; rename one model")
        doc["description"] = spec.summary
        schemas[spec.type] = doc
    return schemas


def _message(spec: EventSpec) -> dict[str, Any]:
    """One event type as an AsyncAPI message: headers, the CloudEvent with its typed data, the Kafka key."""
    visibility = "public" if spec.public else "internal"
    return {
        "name": spec.type,
        "title": spec.type,
        "summary": spec.summary,
        "contentType": "application/cloudevents+json",
        "headers": {
            "allOf": [
                {"$ref": "#/components/schemas/EventHeaders"},
                {"type": "object", "properties": {"hss-event-type": {"const": spec.type}}},
            ]
        },
        "payload": {
            "allOf": [
                {"$ref": "#/components/schemas/CloudEvent"},
                {
                    "type": "object",
                    "properties": {
                        "type": {"const": spec.type},
                        "source": {"const": f"/services/{spec.service}"},
                        "dataschema": {"const": spec.dataschema},
                        "subject": {"description": f"payload field `{spec.subject_field}`"},
                        "data": {"$ref": f"#/components/schemas/{spec.type}"},
                    },
                },
            ]
        },
        "correlationId": {"location": "$message.payload#/correlationid"},
        "bindings": {
            "kafka": {
                "key": {"type": "string", "description": f"The aggregate id: payload field `{spec.key_field}`"},
                "bindingVersion": KAFKA_BINDING,
            }
        },
        "tags": [{"name": visibility}],
    }


def _topic_binding(address: str, partitions: int) -> dict[str, Any]:
    return {
        "kafka": {
            "topic": address,
            "partitions": partitions,
            "topicConfiguration": {"cleanup.policy": ["delete"], "retention.ms": -1},
            "bindingVersion": KAFKA_BINDING,
        }
    }


def _operation(
    action: str, cid: str, specs: list[EventSpec], title: str, summary: str, group: dict[str, Any] | None = None
) -> dict[str, Any]:
    """A send or receive operation on channel `cid` for the messages of `specs` (a receive names its group ids)."""
    op: dict[str, Any] = {
        "action": action,
        "title": title,
        "summary": summary,
        "channel": {"$ref": f"#/channels/{cid}"},
        "messages": [{"$ref": f"#/channels/{cid}/messages/{_ident(s.type)}"} for s in specs],
    }
    if group is not None:
        op["bindings"] = {"kafka": {"groupId": group, "bindingVersion": KAFKA_BINDING}}
    return op


def asyncapi(groups: dict[str, tuple[str, set[str]]]) -> dict[str, Any]:
    """An AsyncAPI 3.0 document: a channel per topic and per dead-letter topic, send and receive operations.

    `groups`: each consumer group, the service it belongs to and the event types it applies.
    """
    partitions = ServiceSettings.model_fields["topic_partitions"].default  # what every service declares
    channels: dict[str, Any] = {}
    operations: dict[str, Any] = {}
    messages: dict[str, Any] = {}
    by_topic: dict[str, list[EventSpec]] = {}
    for spec in published():
        messages[_ident(spec.type)] = _message(spec)
        by_topic.setdefault(spec.topic, []).append(spec)
    for topic, specs in sorted(by_topic.items()):
        cid = _ident(topic)
        service = specs[0].service
        public = any(s.public for s in specs)
        channels[cid] = {
            "address": topic,
            "title": topic,
            "description": f"Events of {service}, keyed by aggregate id (one aggregate's events stay in order)."
            + (" Public: other departments may subscribe." if public else " Internal to the platform."),
            "messages": {_ident(s.type): {"$ref": f"#/components/messages/{_ident(s.type)}"} for s in specs},
            "tags": [{"name": "public" if public else "internal"}],
            "servers": [{"$ref": "#/servers/devstack"}]
            + ([{"$ref": "#/servers/devstack-departments"}] if public else []),
            "bindings": _topic_binding(topic, partitions),
            **_parameters(specs[0]),
        }
        operations[f"{service}_sends_{cid}"] = _operation(
            "send",
            cid,
            specs,
            f"{service} publishes to {topic}",
            "Written in the transaction of the change (outbox), relayed in order with acks=all.",
        )
    for topic, specs in sorted(by_topic.items()):
        public_specs = [s for s in specs if s.public]
        if public_specs:
            cid = _ident(topic)
            operations[f"departments_receive_{cid}"] = {
                **_operation(
                    "receive",
                    cid,
                    public_specs,
                    f"Departments subscribe to {topic}",
                    "Another department's own consumer (see examples/department-subscriber-go), group ids starting "
                    "`<department>.`; any CloudEvents SDK's Kafka binding reads the events (structured mode).",
                    {"type": "string", "pattern": "^[a-z_]+\\..+$"},
                ),
                "tags": [{"name": "public"}],
            }
    for group, (service, types) in sorted(groups.items()):
        for topic, specs in sorted(by_topic.items()):
            handled = [s for s in specs if s.type in types]
            if not handled:
                continue
            cid = _ident(topic)
            operations[f"{_ident(group)}_receives_{cid}"] = _operation(
                "receive",
                cid,
                handled,
                f"{service}'s group {group} applies {topic}",
                "Each event applied once (inbox), offsets committed after the transaction; other types "
                "on the topic are skipped; poison goes to the dead-letter channel after bounded retries.",
                {"type": "string", "const": group},
            )
            dlt = f"{topic}.{group}.dlt"
            did = _ident(dlt)
            channels[did] = {
                "address": dlt,
                "title": dlt,
                "description": f"Records of {topic} that group {group} could not apply, as they were, with why.",
                "messages": {"dead_letter": {"$ref": "#/components/messages/dead_letter"}},
                "tags": [{"name": "dead-letter"}, {"name": "internal"}],
                "servers": [{"$ref": "#/servers/devstack"}],
                "bindings": _topic_binding(dlt, 1),
                **_parameters(specs[0]),
            }
            operations[f"{_ident(group)}_dead_letters_{cid}"] = {
                "action": "send",
                "title": f"{group} parks what it cannot apply from {topic}",
                "channel": {"$ref": f"#/channels/{did}"},
                "messages": [{"$ref": f"#/channels/{did}/messages/dead_letter"}],
            }
    messages["dead_letter"] = {
        "name": "dead_letter",
        "title": "Dead letter",
        "summary": "The original record (value and key unchanged) with the reason in its headers.",
        "contentType": "application/cloudevents+json",
        "headers": {"$ref": "#/components/schemas/DeadLetterHeaders"},
        "payload": {"description": "The original record value, unchanged; poison may not even be JSON."},
        "bindings": {"kafka": {"key": {"type": "string"}, "bindingVersion": KAFKA_BINDING}},
        "tags": [{"name": "dead-letter"}],
    }
    envelope = Envelope.model_json_schema()
    envelope["properties"].pop("data", None)
    envelope["required"].remove("data")
    envelope["properties"]["data"] = {"type": "object", "description": "The payload, as `dataschema` describes"}
    envelope["required"].append("data")
    envelope["title"] = "CloudEvent"
    envelope["description"] = (
        "A CloudEvents 1.0 event in structured mode (the whole event is the record value), with the extensions "
        "`correlationid` (the request that started it all) and `causationid` (the event that caused this one)."
    )
    return {
        "asyncapi": "3.0.0",
        "info": {
            "title": "Home–school–society cooperation platform events",
            "version": "1.0.0",
            "description": "Domain events exchanged over Kafka as CloudEvents 1.0 in structured mode. Channels "
            "and messages tagged `public` may be read by other departments; they carry ids and facts, never names, "
            "ID numbers, addresses or phone numbers. `internal` ones are between the platform's services.",
            "tags": [{"name": name, "description": text} for name, text in TAGS.items()],
        },
        "servers": {
            "devstack": {
                "host": f"127.0.0.1:{DEFAULT_KAFKA_PORT}",
                "protocol": "kafka",
                "description": "The devstack broker's internal listener (PLAINTEXT on loopback), for the services.",
            },
            "devstack-departments": {
                "host": f"127.0.0.1:{DEFAULT_KAFKA_PORT + departments.PORT_OFFSET}",
                "protocol": "kafka",
                "description": "The department listener: each department logs in with its own SCRAM user and may "
                "read only its own referral topic, with group ids starting `<department>.` (deploy/kafka/README.md; "
                "SASL_SSL in production).",
                "security": [{"$ref": "#/components/securitySchemes/departmentLogin"}],
            },
        },
        "defaultContentType": "application/cloudevents+json",
        "channels": channels,
        "operations": operations,
        "components": {
            "schemas": {
                "CloudEvent": envelope,
                "EventHeaders": EVENT_HEADERS,
                "DeadLetterHeaders": DEAD_LETTER_HEADERS,
                **payload_schemas(),
            },
            "messages": messages,
            "securitySchemes": {
                "departmentLogin": {
                    "type": "scramSha512",
                    "description": "A department's SCRAM-SHA-512 user, named like the department "
                    "(`python -m shared.devstack department <name>` prints a devstack login).",
                }
            },
        },
    }
