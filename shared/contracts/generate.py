"""Writes `docs/schemas/<type>.json` per event type and `docs/asyncapi.yaml` from the registry."""

from __future__ import annotations

import argparse
import json
from pathlib import Path
from typing import Any

import yaml

import shared.contracts  # noqa: F401  (registers every contract)
from shared.contracts.compat import breaking_changes
from shared.events import Envelope, EventSpec, registry

ROOT = Path(__file__).resolve().parents[2]
SCHEMAS = ROOT / "docs" / "schemas"
ASYNCAPI = ROOT / "docs" / "asyncapi.yaml"


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


def asyncapi() -> dict[str, Any]:
    """An AsyncAPI 3.0 document: one channel per topic, one message per event type, send operations."""
    channels: dict[str, Any] = {}
    operations: dict[str, Any] = {}
    messages: dict[str, Any] = {}
    for spec in published():
        mid = spec.type.replace(".", "_")
        messages[mid] = {
            "name": spec.type,
            "title": spec.type,
            "summary": spec.summary,
            "contentType": "application/cloudevents+json",
            "headers": {"type": "object", "properties": {"traceparent": {"type": "string"}}},
            "payload": {
                "allOf": [
                    {"$ref": "#/components/schemas/CloudEventEnvelope"},
                    {"type": "object", "properties": {"type": {"const": spec.type}, "data": schema_of(spec)}},
                ]
            },
            "bindings": {"kafka": {"key": {"type": "string", "description": f"payload field {spec.key_field}"}}},
            "tags": [{"name": "public" if spec.public else "internal"}],
        }
        cid = spec.topic.replace(".", "_")
        ch = channels.setdefault(
            cid,
            {"address": spec.topic, "messages": {}, "description": f"Events of {spec.service}, keyed by aggregate id."},
        )
        ch["messages"][mid] = {"$ref": f"#/components/messages/{mid}"}
        operations[f"publish_{mid}"] = {
            "action": "send",
            "channel": {"$ref": f"#/channels/{cid}"},
            "messages": [{"$ref": f"#/channels/{cid}/messages/{mid}"}],
            "summary": f"{spec.service} publishes {spec.type}",
        }
    envelope = Envelope.model_json_schema()
    envelope["properties"].pop("data", None)
    return {
        "asyncapi": "3.0.0",
        "info": {
            "title": "Home–school–society cooperation platform events",
            "version": "1.0.0",
            "description": "Domain events exchanged over Kafka. Messages tagged `public` may be read by other "
            "departments; they carry ids and facts, never names, ID numbers, addresses or phone numbers.",
        },
        "defaultContentType": "application/cloudevents+json",
        "channels": channels,
        "operations": operations,
        "components": {"messages": messages, "schemas": {"CloudEventEnvelope": envelope}},
    }


def render_all() -> dict[Path, str]:
    """Every generated file and its content."""
    files = {
        SCHEMAS / f"{spec.type}.json": json.dumps(schema_of(spec), indent=2, ensure_ascii=False) + "\n"
        for spec in published()
    }
    files[ASYNCAPI] = yaml.safe_dump(asyncapi(), sort_keys=False, allow_unicode=True, width=120)
    return files


def incompatible() -> list[str]:
    """Breaking changes of the current contracts against the committed (published) schemas."""
    found = []
    for spec in published():
        path = SCHEMAS / f"{spec.type}.json"
        if path.exists():
            old = json.loads(path.read_text())
            found += [f"{spec.type}{p}" for p in breaking_changes(old, schema_of(spec))]
    return found


def main() -> None:
    """Write the files, or with --check fail when a committed file is stale; never a breaking change."""
    ap = argparse.ArgumentParser(description=__doc__)
    ap.add_argument("--check", action="store_true", help="exit 1 if the committed files differ")
    args = ap.parse_args()
    broken = incompatible()
    if broken:
        raise SystemExit("breaking change to a published event type; publish a new .vN instead:\n" + "\n".join(broken))
    stale = []
    for path, text in render_all().items():
        if args.check:
            if not path.exists() or path.read_text() != text:
                stale.append(str(path.relative_to(ROOT)))
        else:
            path.parent.mkdir(parents=True, exist_ok=True)
            path.write_text(text)
    if stale:
        raise SystemExit(
            "stale generated contract files (run python -m shared.contracts.generate): " + ", ".join(stale)
        )


if __name__ == "__main__":
    main()
