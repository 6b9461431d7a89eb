"""Bulk import through HTTP: exact counts, planted bad rows with their row numbers, idempotent re-import."""

from __future__ import annotations

import asyncio
from collections import Counter
from typing import Any

import asyncpg
import httpx
import pytest

from demo import citygen
from services.committees.app import create
from services.committees.settings import Settings
from services.committees.store import imports as import_store
from services.committees.store import upserts
from services.committees.usecases import import_jobs
from services.committees.usecases.import_jobs import RESUME_SECONDS
from shared.db import lock_key
from shared.testing.fixtures import serve, wait_for
from tests.integration.committees.conftest import BUREAU, auth

pytestmark = pytest.mark.integration


class Used(dict[str, str]):
    """A statement table that remembers which entities' statements were read."""

    def __init__(self, table: dict[str, str]) -> None:
        super().__init__(table)
        self.used: set[str] = set()

    def __getitem__(self, entity: str) -> str:
        self.used.add(entity)
        return super().__getitem__(entity)


@pytest.mark.parametrize("bulk_rows", [1, 10**9], ids=["first-import-as-inserts", "upserts"])
async def test_csv_import_counts_bad_rows_and_idempotent_reimport(svc, small_city, monkeypatch, bulk_rows):
    """The same answer, events and idempotent re-import whether a first import's rows go in as plain INSERTs (no
    staged key exists yet) or through the upserts (a write below `BULK_ROWS` rows always upserts)."""
    monkeypatch.setattr(upserts, "BULK_ROWS", bulk_rows)
    inserts = Used(upserts.INSERTS)
    monkeypatch.setattr(upserts, "INSERTS", inserts)
    city = small_city
    texts, expected_errors = citygen.plant_bad_rows(citygen.csv_texts(city))
    job = await svc.run_import(csv=texts)
    counts = city.counts()
    rejected = Counter(e for e, _ in {(e, row) for e, row, _ in expected_errors})  # rows, not errors
    for entity, n in counts.items():
        assert job["counts"][entity] == {
            "received": n + rejected[entity],
            "created": n,
            "updated": 0,
            "unchanged": 0,
            "rejected": rejected[entity],
        }
    assert {(e["entity"], e["row"], e["field"]) for e in job["errors"]} == expected_errors
    assert job["error_count"] == len(expected_errors)
    dup = next(e for e in job["errors"] if e["field"] == "student_no")
    assert dup["reason"] == "duplicate of row 2"

    await svc.drained()
    events = await svc.events()
    by_type = Counter(e["type"] for e in events)
    assert by_type == {
        "committees.org_unit.registered.v1": counts["org_units"],
        "committees.staff.registered.v1": counts["staff"],
        "committees.student.registered.v1": counts["students"],
        "committees.family.registered.v1": counts["families"],
    }
    assert job["events"] == len(events)
    assert inserts.used == (set(counts) if bulk_rows == 1 else set())
    # Events carry ids and facts, never names, ID numbers, addresses or phones.
    secrets = (
        {s.name for s in city.students} | {s.national_id for s in city.students} | {g.phone for g in city.guardians}
    )
    secrets |= {f.address for f in city.families} | {s.student_no for s in city.students}
    blob = str([e["envelope"] for e in events])
    assert not any(s in blob for s in list(secrets)[:2000])
    # Family facts match the export.
    fams = [e["data"] for e in events if e["type"] == "committees.family.registered.v1"]
    assert sum(len(f["student_ids"]) for f in fams) == counts["students"]
    assert sum(len(f["guardian_ids"]) for f in fams) == counts["guardians"]
    assert sum(f["parents_work_away"] for f in fams) == sum(f.parents_work_away for f in city.families)

    # Re-importing the same files changes nothing and publishes nothing (every key exists: the upserts).
    inserts.used.clear()
    again = await svc.run_import(csv=texts)
    assert inserts.used == set()
    for entity, n in counts.items():
        assert again["counts"][entity]["unchanged"] == n
        assert again["counts"][entity]["created"] == again["counts"][entity]["updated"] == 0
    assert again["events"] == 0
    assert {(e["entity"], e["row"], e["field"]) for e in again["errors"]} == expected_errors
    await svc.drained()
    assert len(await svc.events()) == len(events)


async def test_json_reimport_with_changes_publishes_only_changed(svc, small_city):
    body = citygen.to_json(small_city)
    await svc.run_import(body=body)
    await svc.drained()
    before = await svc.events()
    student = body["students"][0]
    other_class = next(s["class_id"] for s in body["students"] if s["class_id"] != student["class_id"])
    student["class_id"] = other_class
    body["students"][1]["name"] = "改名字"  # personal change: stored, not published
    fam = next(f for f in body["families"] if not f["parents_work_away"])
    fam["parents_work_away"] = True
    fam["living_arrangement"] = "grandparents"
    job = await svc.run_import(body={"students": body["students"], "families": body["families"]})
    assert job["counts"]["students"]["updated"] == 2
    assert job["counts"]["families"]["updated"] == 1
    await svc.drained()
    new = [e for e in await svc.events() if e["envelope"]["id"] not in {b["envelope"]["id"] for b in before}]
    types = Counter(e["type"] for e in new)
    assert types["committees.student.changed.v1"] == 1
    changed = next(e for e in new if e["type"] == "committees.student.changed.v1")
    assert changed["data"]["class_id"] == other_class
    assert changed["data"]["org_path"].endswith("/" + other_class)
    fam_events = [e for e in new if e["type"] == "committees.family.changed.v1"]
    assert any(e["data"]["parents_work_away"] and e["data"]["living_arrangement"] == "grandparents" for e in fam_events)
    assert job["events"] == len(new)
    # The renamed student is visible to the bureau with the new name.
    r = await svc.http.get(
        "/api/v1/students", params={"class_id": body["students"][1]["class_id"], "limit": 500}, headers=BUREAU
    )
    assert "改名字" in {s["name"] for s in r.json()["items"]}


async def test_large_files_are_validated_in_a_process_of_their_own_with_the_same_answer(svc, small_city, monkeypatch):
    """From `PROCESS_BYTES` on, the files are validated in a forked process (the event loop only streams the
    COPYs): the same counts, row errors (row, field, reason) and events as when validated in a thread."""
    texts, expected_errors = citygen.plant_bad_rows(citygen.csv_texts(small_city))
    pools: list[object] = []

    class Pool(import_jobs.ProcessPoolExecutor):
        def __init__(self, *args: Any, **kwargs: Any) -> None:
            super().__init__(*args, **kwargs)
            pools.append(self)

    monkeypatch.setattr(import_jobs, "ProcessPoolExecutor", Pool)
    monkeypatch.setattr(import_jobs, "PROCESS_BYTES", 0)
    job = await svc.run_import(csv=texts)
    assert len(pools) == 1
    counts = small_city.counts()
    assert {e: c["created"] for e, c in job["counts"].items()} == counts
    assert {(e["entity"], e["row"], e["field"]) for e in job["errors"]} == expected_errors
    await svc.drained()
    assert job["events"] == len(await svc.events()) > 0

    # The same files again, validated in a thread: nothing changes, and the same errors with the same reasons.
    monkeypatch.setattr(import_jobs, "PROCESS_BYTES", 10**12)
    again = await svc.run_import(csv=texts)
    assert len(pools) == 1
    assert sorted(map(str, again["errors"])) == sorted(map(str, job["errors"]))
    assert all(c["unchanged"] == counts[e] for e, c in again["counts"].items())


async def test_an_upload_stored_in_parts_as_it_arrives_gives_the_same_import(svc, small_city, monkeypatch):
    """An upload is stored a part at a time as its bytes arrive and read back part by part into a file the
    validating side streams, and the upserts' answers are read a few rows at a time: with parts of 1,000 bytes
    (many, ending inside multi-byte names) and 7 answer rows at a time the import's counts, planted row errors (row,
    field) and events are exact; a file that turns out not to be UTF-8, or to hold a NUL, after
    its first part is refused with nothing stored."""
    monkeypatch.setattr(import_store, "PART_BYTES", 1_000)
    monkeypatch.setattr(upserts, "PUBLISH_ROWS", 7)  # the answers read, and their events written, 7 rows at a time
    texts, expected_errors = citygen.plant_bad_rows(citygen.csv_texts(small_city))
    import_id = (await svc.http.post("/api/v1/imports/csv", headers=BUREAU)).json()["import_id"]
    url, csv = f"/api/v1/imports/{import_id}/files/", {**BUREAU, "content-type": "text/csv"}
    for entity, text in texts.items():
        r = await svc.http.put(url + entity, content=text.encode(), headers=csv)
        assert r.status_code == 200, r.text
        assert r.json()["files"][entity] == len(text.encode())
    conn = await asyncpg.connect(svc.settings.database_url, server_settings={"search_path": svc.settings.db_schema})
    try:
        parts = await conn.fetchval("SELECT count(*) FROM import_file_parts WHERE import_id = $1", import_id)
    finally:
        await conn.close()
    assert parts >= sum(len(t.encode()) for t in texts.values()) // 1_000

    head = texts["students"].encode()[:3_000]
    for tail, detail in ((b"\xff\xfe", "UTF-8"), (b"\n\x00", "must not contain NUL")):
        r = await svc.http.put(url + "students", content=head + tail, headers=csv)
        assert r.status_code == 422 and detail in r.json()["errors"][0]["detail"], r.text
    r = await svc.http.get(f"/api/v1/imports/{import_id}", headers=BUREAU)
    assert r.json()["files"]["students"] == len(texts["students"].encode())  # the refused uploads replaced nothing

    r = await svc.http.post(f"/api/v1/imports/{import_id}/start", headers=BUREAU)
    assert r.status_code == 202, r.text

    async def done() -> dict[str, Any] | None:
        job = (await svc.http.get(r.headers["location"], headers=BUREAU)).json()
        return job if job["status"] in ("succeeded", "failed") else None

    job = await wait_for(done, timeout=120, interval=0.2)
    assert job["status"] == "succeeded", job
    counts = small_city.counts()
    assert {e: c["created"] for e, c in job["counts"].items()} == counts
    assert {(e["entity"], e["row"], e["field"]) for e in job["errors"]} == expected_errors
    # one registered event per org unit, staff member, student and family: every answer row past the first 7 too
    assert job["events"] == sum(n for e, n in counts.items() if e != "guardians")
    await svc.drained()
    assert len(await svc.events()) == job["events"]


async def test_only_bureau_admins_import(svc):
    r = await svc.http.post("/api/v1/imports", json={"families": []}, headers=auth("district_admin", "/620400/620402"))
    assert r.status_code == 403 and r.headers["content-type"] == "application/problem+json"
    r = await svc.http.post("/api/v1/imports", json={"families": []})
    assert r.status_code == 401


async def test_an_upload_that_is_not_the_entitys_csv_is_refused_at_once(svc):
    """The wrong file (or no CSV at all) is a 422 naming the missing columns when uploaded, and is not kept."""
    import_id = (await svc.http.post("/api/v1/imports/csv", headers=BUREAU)).json()["import_id"]
    url, csv = f"/api/v1/imports/{import_id}/files/students", {**BUREAU, "content-type": "text/csv"}
    for text in ("null", "", "family_no,parents_work_away,living_arrangement\nF1,true,alone\n"):
        r = await svc.http.put(url, content=text.encode(), headers=csv)
        assert r.status_code == 422 and r.headers["content-type"] == "application/problem+json", r.text
        assert "lacks the students columns" in r.json()["errors"][0]["detail"]
    job = (await svc.http.get(f"/api/v1/imports/{import_id}", headers=BUREAU)).json()
    assert job["files"] == {}
    r = await svc.http.put(url, content=b"student_no,name,birth_date,class_id,family_no\n", headers=csv)
    assert r.status_code == 200 and r.json()["files"] == {"students": 46}


async def test_import_with_idempotency_key_runs_once(svc):
    body = {"org_units": [{"org_unit_id": "620400", "level": "city", "name": "白银市"}]}
    h = {**BUREAU, "Idempotency-Key": "city-import-1"}
    first = await svc.http.post("/api/v1/imports", json=body, headers=h)
    again = await svc.http.post("/api/v1/imports", json=body, headers=h)
    assert first.status_code == again.status_code == 202
    assert again.headers["idempotent-replayed"] == "true"
    assert first.json()["import_id"] == again.json()["import_id"]
    url = first.headers["location"]

    async def done() -> dict | None:
        job = (await svc.http.get(url, headers=BUREAU)).json()
        return job if job["status"] == "succeeded" else None

    job = await wait_for(done, timeout=60)
    assert job["counts"]["org_units"]["created"] == 1
    await svc.drained()
    assert [e["type"] for e in await svc.events()] == ["committees.org_unit.registered.v1"]


async def test_a_queued_import_survives_a_restart(make_settings):
    """A job accepted (202) but not run before the process stopped runs when the service starts again."""
    settings = make_settings(Settings)
    csv = "org_unit_id,parent_id,level,name,school_type\n620400,,city,白银市,\n620402,620400,district,白银区,\n"
    async with serve(create(settings)) as url, httpx.AsyncClient(base_url=url) as http:
        r = await http.post("/api/v1/imports/csv", headers=BUREAU)
        import_id = r.json()["import_id"]
        put = await http.put(
            f"/api/v1/imports/{import_id}/files/org_units",
            content=csv.encode(),
            headers={**BUREAU, "content-type": "text/csv"},
        )
        assert put.status_code == 200
    # The process died between committing the 202 and running the job.
    conn = await asyncpg.connect(settings.database_url, server_settings={"search_path": settings.db_schema})
    try:
        await conn.execute("UPDATE imports SET status = 'queued' WHERE import_id = $1", import_id)
    finally:
        await conn.close()
    async with serve(create(settings)) as url, httpx.AsyncClient(base_url=url) as http:

        async def done() -> dict | None:
            job = (await http.get(f"/api/v1/imports/{import_id}", headers=BUREAU)).json()
            return job if job["status"] == "succeeded" else None

        job = await wait_for(done, timeout=60)
        assert job["counts"]["org_units"] == {"received": 2, "created": 2, "updated": 0, "unchanged": 0, "rejected": 0}


async def test_a_job_left_running_by_a_dead_process_is_taken_over_at_once(make_settings):
    """A job marked running whose process died (no session holds its lock) runs again within seconds; one whose
    process still runs it (its session holds the lock) is left alone until that session ends."""
    settings = make_settings(Settings)
    csv = "org_unit_id,parent_id,level,name,school_type\n620400,,city,白银市,\n620402,620400,district,白银区,\n"
    async with serve(create(settings)) as url, httpx.AsyncClient(base_url=url) as http:
        r = await http.post("/api/v1/imports/csv", headers=BUREAU)
        import_id = r.json()["import_id"]
        put = await http.put(
            f"/api/v1/imports/{import_id}/files/org_units",
            content=csv.encode(),
            headers={**BUREAU, "content-type": "text/csv"},
        )
        assert put.status_code == 200
    conn = await asyncpg.connect(settings.database_url, server_settings={"search_path": settings.db_schema})
    try:
        # Another replica runs it right now: its session holds the job's lock.
        await conn.execute("UPDATE imports SET status = 'running', started_at = now() WHERE import_id = $1", import_id)
        await conn.execute("SELECT pg_advisory_lock($1)", lock_key(f"import-job:{settings.db_schema}:{import_id}"))
        async with serve(create(settings)) as url, httpx.AsyncClient(base_url=url) as http:

            async def status() -> str:
                return str((await http.get(f"/api/v1/imports/{import_id}", headers=BUREAU)).json()["status"])

            await asyncio.sleep(RESUME_SECONDS + 1)
            assert await status() == "running", "a job another process runs must not be taken"
            await conn.close()  # that replica dies: its lock goes with its session

            async def done() -> bool:
                return await status() == "succeeded"

            await wait_for(done, timeout=RESUME_SECONDS + 30)
    finally:
        if not conn.is_closed():
            await conn.close()
