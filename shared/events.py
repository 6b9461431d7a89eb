"""Event envelope (CloudEvents 1.0 + correlation/causation) and the registry of event types."""

from __future__ import annotations

import builtins
import functools
import re
import uuid
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime
from enum import Enum
from typing import Annotated, Any, Generic, Literal, NamedTuple, NotRequired, TypeVar

import orjson
from pydantic import BaseModel, ConfigDict, Field, TypeAdapter, create_model
from pydantic.fields import FieldInfo
from typing_extensions import TypedDict

from shared.context import TraceContext
from shared.ids import new_id

P = TypeVar("P", bound=BaseModel)

TOPIC_PARAM = re.compile(r"\{([a-z_]+)\}")
TYPE_RE = re.compile(r"^(?P<service>[a-z]+)\.(?P<aggregate>[a-z_]+)\.(?P<event>[a-z_]+)\.v(?P<major>\d+)$")


class Envelope(BaseModel):
    """CloudEvents 1.0 structured-mode envelope with correlation and causation ids."""

    model_config = ConfigDict(extra="allow")

    specversion: Literal["1.0"] = "1.0"
    id: uuid.UUID
    source: str
    type: str
    time: datetime
    subject: str
    datacontenttype: Literal["application/json"] = "application/json"
    dataschema: str
    correlationid: str
    causationid: str | None = None
    data: dict[str, Any]


@functools.cache
def typed_envelope(model: type[BaseModel]) -> type[Envelope]:
    """The envelope whose `data` is `model`: a consumed event's envelope and payload validated in one pass.

    An event parsed this way has the payload model as its envelope's `data` (the same object as `Event.payload`).
    """
    return create_model(f"Envelope[{model.__name__}]", __base__=Envelope, data=(model, ...))


@functools.cache
def lean_envelope(model: type[BaseModel]) -> TypeAdapter[dict[str, Any]]:
    """The envelope whose `data` is `model`, validated to plain dicts: the same checks as `typed_envelope` (every
    field's type, constraints and defaults, the envelope's required attributes), without building models.

    About half the CPU of `typed_envelope(model).model_validate_json` per event: for consumers that only copy
    fields (the directory copy, a projection's replay). An error names the field at fault as the model's would.
    """
    return TypeAdapter(_lean(typed_envelope(model)))


def _lean(model: type[BaseModel]) -> Any:
    """A TypedDict of `model`'s fields (nested models too), each annotated with its own FieldInfo."""

    def shape(f: FieldInfo) -> Any:
        inner = f.annotation
        if isinstance(inner, type) and issubclass(inner, BaseModel):
            inner = _lean(inner)
        annotated = Annotated[inner, f]  # type: ignore[valid-type]  # type, constraints and default as declared
        return annotated if f.is_required() else NotRequired[annotated]

    return TypedDict(f"Lean{model.__name__}", {name: shape(f) for name, f in model.model_fields.items()})  # type: ignore[operator]


class Fact(NamedTuple):
    """A consumed event as a copying subscription (`shared.inbox.Facts`) gets it: its type and its payload's fields,
    validated against the contract (`lean_envelope`), as a dict; no model, envelope or context of its own."""

    type: str
    data: dict[str, Any]


@dataclass(frozen=True)
class Event(Generic[P]):
    """A consumed event: its envelope, its payload parsed with the registered contract, and its trace context.

    `trace` is the context handling it runs under (correlation id, this event as cause, its span when tracing is
    on): a batch handler names it as the cause of the events it writes, `outbox.add_caused(conn, [(e.trace, ...)])`.
    """

    envelope: Envelope
    payload: P
    topic: str
    partition: int
    offset: int
    trace: TraceContext | None = None


class Built(NamedTuple):
    """An event payload its service built itself, written without a model: the contract class, and its fields as the
    contract's JSON has them: every field, in the class's order, with values orjson writes as pydantic does (str,
    int, bool, None, dates, aware datetimes, str vocabularies, lists and dicts of these).

    For a hot path where building and validating a model per event cost more than the rest of the work (visits'
    record path: ~20 checklist and requirement items per visit). Nothing checks the fields at run time, so each
    builder has a unit test calling `check_built` on what it builds: the fields validate against the contract and
    their JSON is the model's own, byte for byte."""

    model: builtins.type[BaseModel]
    fields: dict[str, Any]


Outgoing = BaseModel | Built  # what the outbox writes: a contract model, or a payload its service built itself


def _field(payload: Outgoing, name: str) -> Any:
    return payload.fields[name] if isinstance(payload, Built) else getattr(payload, name)


def built_json(payload: Built) -> bytes:
    """The JSON of a built payload's fields (what `envelope_json` writes as its data)."""
    return orjson.dumps(payload.fields, option=orjson.OPT_UTC_Z)


def check_built(payload: Built) -> None:
    """Raise unless the built payload is what its contract class would write: its fields validate against the class
    and their JSON equals the validated model's, byte for byte (for the builders' unit tests)."""
    model = payload.model.model_validate(payload.fields)
    want, got = model.model_dump_json().encode(), built_json(payload)
    if got != want:
        raise ValueError(f"{payload.model.__name__} built as {got!r}, the contract writes {want!r}")


@dataclass(frozen=True)
class EventSpec:
    """How one event type is named, routed and keyed."""

    type: str
    model: builtins.type[BaseModel]
    topic: str
    key_field: str
    subject_field: str
    public: bool
    summary: str
    topics: tuple[str, ...] = ()  # every topic `topic` (a template like `x.{department}.events`) expands to

    @functools.cached_property
    def topic_param(self) -> str | None:
        """The payload field a templated topic is expanded from (`department`), or None for a plain topic (found
        once: bulk writes ask for every event)."""
        found = TOPIC_PARAM.search(self.topic)
        return found[1] if found else None

    def topic_for(self, payload: Outgoing) -> str:
        """The logical topic this payload goes to."""
        param = self.topic_param
        if param is None:
            return self.topic
        return self.topic.replace(f"{{{param}}}", str(_field(payload, param)))

    @property
    def service(self) -> str:
        """The publishing service (first segment of the type)."""
        return self.type.split(".", 1)[0]

    @property
    def dataschema(self) -> str:
        """The URI of this type's JSON Schema in the repository."""
        return f"urn:hss:schema:{self.type}"

    def key(self, payload: Outgoing) -> str:
        """The Kafka key (aggregate id) of a payload."""
        return str(_field(payload, self.key_field))

    def subject(self, payload: Outgoing) -> str:
        """The CloudEvents subject (aggregate id) of a payload."""
        return str(_field(payload, self.subject_field))

    @functools.cached_property
    def envelope_attributes(self) -> str:
        """The envelope attributes every event of this type shares, as JSON members (serialised once)."""
        common = {
            "specversion": "1.0",
            "source": f"/services/{self.service}",
            "type": self.type,
            "datacontenttype": "application/json",
            "dataschema": self.dataschema,
        }
        return orjson.dumps(common).decode()[1:-1]


class Registry:
    """Maps `type` strings to payload models and back; one instance holds all contracts."""

    def __init__(self) -> None:
        self._by_type: dict[str, EventSpec] = {}
        self._by_model: dict[type[BaseModel], EventSpec] = {}

    def register(
        self, type_: str, *, topic: str, key: str, subject: str | None = None, public: bool = False
    ) -> Callable[[type[P]], type[P]]:
        """Class decorator registering a payload model under an explicit event type name."""
        m = TYPE_RE.match(type_)
        if not m:
            raise ValueError(f"event type {type_!r} must look like <service>.<aggregate>.<event>.v<N>")
        if not topic.startswith(f"{m['service']}.") or not topic.endswith(".events"):
            raise ValueError(f"topic {topic!r} must be <service>.<aggregate>.events of the publisher")

        def deco(model: type[P]) -> type[P]:
            if type_ in self._by_type and self._by_type[type_].model is not model:
                raise ValueError(f"event type {type_} registered twice")
            if key not in model.model_fields:
                raise ValueError(f"{model.__name__} has no key field {key!r}")
            topics = _expand(topic, model)
            spec = EventSpec(
                type=type_,
                model=model,
                topic=topic,
                key_field=key,
                subject_field=subject or key,
                public=public,
                summary=(model.__doc__ or type_).strip().splitlines()[0],
                topics=topics,
            )
            self._by_type[type_] = spec
            self._by_model[model] = spec
            return model

        return deco

    def spec(self, type_: str) -> EventSpec:
        """The spec for a type string; KeyError when unknown."""
        return self._by_type[type_]

    def spec_for(self, payload: Outgoing) -> EventSpec:
        """The spec of a payload instance's model (or of a built payload's)."""
        return self._by_model[payload.model if isinstance(payload, Built) else type(payload)]

    def type_of(self, model: type[BaseModel]) -> str:
        """The event type a contract class is registered under (handlers name types this way, never as strings)."""
        return self._by_model[model].type

    def all(self) -> list[EventSpec]:
        """Every registered spec, sorted by type."""
        return sorted(self._by_type.values(), key=lambda s: s.type)

    def topics_for(self, types: list[str]) -> list[str]:
        """The logical topics carrying the given types (every expansion of a templated topic)."""
        return sorted({topic for t in types for topic in self._by_type[t].topics})


def _expand(topic: str, model: type[BaseModel]) -> tuple[str, ...]:
    """The topics a (templated) topic name stands for: one per value of the enum field it names."""
    params = TOPIC_PARAM.findall(topic)
    if not params:
        return (topic,)
    if len(params) > 1 or params[0] not in model.model_fields:
        raise ValueError(f"topic {topic!r} may name one field of {model.__name__}")
    values = model.model_fields[params[0]].annotation
    if not (isinstance(values, type) and issubclass(values, Enum)):
        raise ValueError(f"topic {topic!r} must be expanded from an enum field")
    return tuple(topic.replace(f"{{{params[0]}}}", str(v.value)) for v in values)


registry = Registry()
event_type = registry.register
type_of = registry.type_of


_TIME = TypeAdapter(datetime)


def envelope_json(
    payloads: Sequence[Outgoing], event_ids: Sequence[str], *, correlation_id: str, causation_id: str | None
) -> list[str]:
    """The CloudEvents JSON (structured mode, an `Envelope`) of each payload, in order: the kit's one envelope
    writer, for the outbox row by row and in bulk.

    Each envelope is written once, as text: the attributes every event of a type shares are serialised once per
    type (`EventSpec.envelope_attributes`), those of the call (its time, correlation and causation ids) once per
    call, and each payload straight to JSON by its model's own serializer (what `model_dump_json` writes), a `Built`
    one by orjson — no envelope model is built or validated (that was a quarter to a third of outreach's CPU per
    finding).
    """
    call = (
        f'"time":{_TIME.dump_json(datetime.now(UTC)).decode()},'
        f'"correlationid":{orjson.dumps(correlation_id).decode()},"causationid":{orjson.dumps(causation_id).decode()}'
    )
    out = []
    for event_id, payload in zip(event_ids, payloads, strict=True):
        spec = registry.spec_for(payload)
        subject = orjson.dumps(spec.subject(payload)).decode()
        if isinstance(payload, Built):
            data = built_json(payload).decode()
        else:
            data = spec.model.__pydantic_serializer__.to_json(payload).decode()
        out.append(f'{{"id":"{event_id}","subject":{subject},{spec.envelope_attributes},{call},"data":{data}}}')
    return out


def new_envelope(spec: EventSpec, payload: BaseModel, *, correlation_id: str, causation_id: str | None) -> Envelope:
    """A payload in a fresh envelope, as a model (tests and tools that write events by hand; the outbox writes the
    same JSON with `envelope_json`)."""
    if registry.spec_for(payload) is not spec:
        raise ValueError(f"{type(payload).__name__} is not the contract of {spec.type}")
    [text] = envelope_json([payload], [new_id()], correlation_id=correlation_id, causation_id=causation_id)
    return Envelope.model_validate_json(text)


class Payload(BaseModel):
    """Base for event payloads: immutable, and tolerant of fields a later minor version adds."""

    model_config = ConfigDict(extra="ignore", frozen=True)


def occurred_at() -> datetime:
    """Now, in UTC, for payload timestamps."""
    return datetime.now(UTC)


__all__ = [
    "Built",
    "Envelope",
    "Event",
    "EventSpec",
    "Fact",
    "Field",
    "Outgoing",
    "Payload",
    "Registry",
    "built_json",
    "check_built",
    "envelope_json",
    "event_type",
    "new_envelope",
    "occurred_at",
    "registry",
    "type_of",
]
