"""A synthetic directory published as committees' contract events (what the committees service would emit)."""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass, field
from datetime import UTC, datetime

import orjson
from aiokafka import AIOKafkaProducer
from aiokafka.admin import AIOKafkaAdminClient
from pydantic import BaseModel

from shared import kafka
from shared.contracts import committees as c
from shared.contracts.common import LivingArrangement, OrgLevel, StaffRole
from shared.events import new_envelope, registry
from shared.settings import ServiceSettings

CITY = "620400"


@dataclass
class Directory:
    """The events, plus indexes tests need to build requests."""

    events: list[BaseModel] = field(default_factory=list)
    families: dict[str, list[str]] = field(default_factory=dict)  # family -> student ids
    student_path: dict[str, str] = field(default_factory=dict)  # student -> class path
    teachers: dict[str, str] = field(default_factory=dict)  # staff id -> school path

    @property
    def students(self) -> int:
        return len(self.student_path)


def build_district(
    district: str = "620402",
    *,
    schools: int = 2,
    classes: int = 3,
    families_per_class: int = 12,
    subject_teachers: int = 2,
    shared_families: int = 1,
    directory: Directory | None = None,
) -> Directory:
    """Schools with one grade of `classes` classes; a class teacher per class, subject teachers for two classes
    each, a principal (who visits nobody), one-child families and `shared_families` families per school with
    children in two classes."""
    d = directory or Directory()
    now = datetime.now(UTC)
    city_path = f"/{CITY}"
    dpath = f"{city_path}/{district}"
    d.events.append(
        c.OrgUnitRegistered(
            org_unit_id=district, parent_id=CITY, level=OrgLevel.DISTRICT, org_path=dpath, name=district,
            occurred_at=now,
        )
    )  # fmt: skip
    for s in range(1, schools + 1):
        sid = f"{district}s{s}"
        spath = f"{dpath}/{sid}"
        gid = f"{sid}g1"
        gpath = f"{spath}/{gid}"
        d.events.append(
            c.OrgUnitRegistered(
                org_unit_id=sid, parent_id=district, level=OrgLevel.SCHOOL, org_path=spath, name=sid, occurred_at=now
            )
        )
        d.events.append(
            c.OrgUnitRegistered(
                org_unit_id=gid, parent_id=sid, level=OrgLevel.GRADE, org_path=gpath, name=gid, occurred_at=now
            )
        )
        class_ids = [f"{gid}c{k}" for k in range(1, classes + 1)]
        for cid in class_ids:
            d.events.append(
                c.OrgUnitRegistered(
                    org_unit_id=cid, parent_id=gid, level=OrgLevel.CLASS, org_path=f"{gpath}/{cid}", name=cid,
                    occurred_at=now,
                )
            )  # fmt: skip
        for cid in class_ids:
            staff_id = f"t-{cid}"
            d.teachers[staff_id] = spath
            d.events.append(
                c.StaffRegistered(
                    staff_id=staff_id, org_path=spath, roles=[StaffRole.CLASS_TEACHER, StaffRole.SUBJECT_TEACHER],
                    class_ids=[cid], head_class_id=cid, occurred_at=now,
                )
            )  # fmt: skip
            for n in range(families_per_class):
                fid = f"f-{cid}-{n}"
                st = f"st-{cid}-{n}"
                d.families[fid] = [st]
                d.student_path[st] = f"{gpath}/{cid}"
                d.events.append(
                    c.StudentRegistered(
                        student_id=st, class_id=cid, org_path=f"{gpath}/{cid}", family_id=fid, occurred_at=now
                    )
                )
        for t in range(subject_teachers):
            staff_id = f"t-{sid}-sub{t}"
            d.teachers[staff_id] = spath
            d.events.append(
                c.StaffRegistered(
                    staff_id=staff_id, org_path=spath, roles=[StaffRole.SUBJECT_TEACHER],
                    class_ids=[class_ids[t % classes], class_ids[(t + 1) % classes]], occurred_at=now,
                )
            )  # fmt: skip
        d.events.append(
            c.StaffRegistered(
                staff_id=f"p-{sid}", org_path=spath, roles=[StaffRole.PRINCIPAL], class_ids=[], occurred_at=now
            )
        )
        for n in range(shared_families):
            fid = f"f-{sid}-shared{n}"
            kids = []
            for j, cid in enumerate(class_ids[:2]):
                st = f"st-{sid}-shared{n}-{j}"
                kids.append(st)
                d.student_path[st] = f"{gpath}/{cid}"
                d.events.append(
                    c.StudentRegistered(
                        student_id=st, class_id=cid, org_path=f"{gpath}/{cid}", family_id=fid, occurred_at=now
                    )
                )
            d.families[fid] = kids
    for fid, kids in d.families.items():
        if fid.startswith(f"f-{district}"):
            d.events.append(
                c.FamilyRegistered(
                    family_id=fid, student_ids=kids, guardian_ids=[f"g-{fid}"], parents_work_away=False,
                    living_arrangement=LivingArrangement.BOTH_PARENTS, occurred_at=now,
                )
            )  # fmt: skip
    return d


async def publish(settings: ServiceSettings, events: Iterable[BaseModel]) -> int:
    """Produce the events as committees would (envelope, key = aggregate id) to the prefixed topics."""
    events = list(events)
    specs = [registry.spec_for(e) for e in events]
    await kafka.ensure_topics(
        settings.kafka_bootstrap_servers,
        [kafka.TopicSpec(settings.topic(t), settings.topic_partitions) for t in {s.topic for s in specs}],
    )
    producer = AIOKafkaProducer(bootstrap_servers=settings.kafka_bootstrap_servers, linger_ms=5, acks="all")
    await producer.start()
    try:
        futures = []
        for spec, e in zip(specs, events, strict=True):
            env = new_envelope(spec, e, correlation_id="directory-load", causation_id=None)
            futures.append(
                await producer.send(
                    settings.topic(spec.topic), orjson.dumps(env.model_dump(mode="json")), key=spec.key(e).encode()
                )
            )
        for f in futures:
            await f
    finally:
        await producer.stop()
    return len(events)


async def delete_topics(bootstrap: str, prefix: str) -> None:
    """Delete the topics of one test or bench run (its unique prefix): thousands of leftover partitions would
    exhaust the shared development broker's memory."""
    if not prefix:
        raise ValueError("refusing to delete topics without a run prefix")
    admin = AIOKafkaAdminClient(bootstrap_servers=bootstrap)
    await admin.start()
    try:
        mine = [t for t in await admin.list_topics() if t.startswith(prefix)]
        if mine:
            await admin.delete_topics(mine)
    finally:
        await admin.close()
