"""The demo: a synthetic Baiyin through all four services, end to end, then the city summary.

Run: `make demo` (or `.venv/bin/python -m demo --scale 0.05`); `--scale 1` is the full city (18,000 teachers).
"""

from __future__ import annotations

import argparse
import asyncio
import math
import os
import random
import secrets
import sys
import time
from collections import Counter
from collections.abc import Callable, Iterator
from datetime import UTC, date, datetime, timedelta
from typing import Any

from rich.console import Console
from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeElapsedColumn
from rich.table import Table

from demo import citygen, recorder
from demo.activity import districts, schools, teacher_habits, visit_record
from demo.client import CITY, Api, bureau_token, settled
from demo.work import people_at_work
from shared.auth import issue_token
from shared.clock import local_date
from shared.devstack import DevstackError, Stack, services_up, state_dir
from shared.devstack.idp import Account, IdentityProvider

# A wide console even when output is piped, so the district table stays readable in logs.
console = Console(width=None if Console().is_terminal else 140)


def progress() -> Progress:
    return Progress(
        TextColumn("{task.description:<34}"), BarColumn(), MofNCompleteColumn(), TimeElapsedColumn(), console=console
    )


async def import_city(api: Api, city: citygen.City) -> dict[str, Any]:
    """Import the bureau's export through the committees API and wait for the job."""
    with console.status("importing the directory through the committees API"):
        job = await api.post("/imports", citygen.to_json(city))
        while job["status"] not in ("succeeded", "failed"):
            await asyncio.sleep(1)
            job = await api.get(f"/imports/{job['import_id']}")
    if job["status"] != "succeeded":
        raise RuntimeError(f"the import failed: {job}")
    return dict(job)


async def cooperation(api: Api, city: citygen.City, rng: random.Random) -> dict[str, int]:
    """Committees, parent schools with sessions and attendance, instructor teams, the lecturer group and lectures."""
    today = local_date(datetime.now(UTC))  # the bureau's calendar, as the services count it
    counts = {"committees": 0, "members": 0, "parent_schools": 0, "sessions": 0, "teams": 0, "lectures": 0}
    staff_by_school: dict[str, list[Any]] = {}
    for s in city.staff:
        staff_by_school.setdefault(s.org_unit_id, []).append(s)
    school_units = schools(city)
    sem = asyncio.Semaphore(16)
    with progress() as bar:
        task = bar.add_task("committees, parent schools, teams", total=len(school_units))

        async def per_school(school: Any) -> None:
            async with sem:
                await api.post("/committees", {"org_unit_id": school.org_unit_id, "formed_on": today.isoformat()})
                counts["committees"] += 1
                team = await api.post(
                    "/instructor-teams", {"org_unit_id": school.org_unit_id, "name": f"{school.name}家庭教育指导团队"}
                )
                counts["teams"] += 1
                members = staff_by_school.get(school.org_unit_id, [])
                roles = {
                    "vice_principal": "vice_principal_in_charge",
                    "mental_health_teacher": "mental_health_teacher",
                    "ideological_political_teacher": "ideological_political_teacher",
                }
                picked = [(m, roles[r]) for m in members for r in m.roles if r in roles][:4]
                picked += [(m, "class_teacher") for m in members if m.head_class_id][:2]
                for i, (m, role) in enumerate(picked):
                    await api.post(
                        f"/instructor-teams/{team['team_id']}/members",
                        {"role": role, "staff_id": m.staff_id, "is_lead": i == 0},
                    )
                await api.post(
                    f"/instructor-teams/{team['team_id']}/members",
                    {"role": "outstanding_parent", "name": "优秀家长代表"},
                )
                bar.advance(task)

        await asyncio.gather(*(per_school(s) for s in school_units))

    # Class committees with members for a sample of classes; parent-school sessions with attendance.
    classes = [u for u in city.org_units if u.level == "class"]
    sample = rng.sample(classes, min(len(classes), 40))
    with progress() as bar:
        task = bar.add_task("class committees and parent schools", total=len(sample) + len(districts(city)))

        async def class_committee(cls: Any) -> tuple[str, list[str]]:
            """A class's committee with the first guardian of up to five of its families; its district and them."""
            async with sem:
                committee = await api.post(
                    "/committees", {"org_unit_id": cls.org_unit_id, "formed_on": today.isoformat()}
                )
                counts["committees"] += 1
                students = (await api.get("/students", class_id=cls.org_unit_id, limit=50))["items"]
                families = list(dict.fromkeys(st["family_id"] for st in students))  # siblings share a family
                members = []
                for i, family_id in enumerate(families[:5]):
                    fam = await api.get(f"/families/{family_id}")
                    gid = fam["guardians"][0]["guardian_id"]
                    await api.post(
                        f"/committees/{committee['committee_id']}/members",
                        {"guardian_id": gid, "role": "chair" if i == 0 else "member", "term_start": today.isoformat()},
                    )
                    counts["members"] += 1
                    members.append(gid)
                bar.advance(task)
                return committee["org_path"].split("/")[2], members

        # The classes side by side (a sequence of ~500 requests); the guardians in the sample's order all the same.
        guardians_by_district: dict[str, list[str]] = {}
        for district, members in await asyncio.gather(*(class_committee(cls) for cls in sample)):
            guardians_by_district.setdefault(district, []).extend(members)
        for d in districts(city):
            ps = await api.post(
                "/parent-schools", {"org_unit_id": d.org_unit_id, "kind": "county", "name": f"{d.name}家长学校"}
            )
            counts["parent_schools"] += 1
            guardians = guardians_by_district.get(d.org_unit_id, [])
            for n, topic in enumerate(["《家庭教育促进法》解读", "亲子沟通与心理健康"]):
                held_on = (today - timedelta(days=7 * (n + 1))).isoformat()
                session = await api.post(
                    f"/parent-schools/{ps['parent_school_id']}/sessions",
                    {"topic": topic, "held_on": held_on, "mode": "mixed"},
                )
                counts["sessions"] += 1
                base = f"/parent-schools/{ps['parent_school_id']}/sessions/{session['session_id']}"
                if guardians:
                    await api.post(f"{base}/enrolments", {"guardian_ids": guardians})
                    await api.post(
                        f"{base}/attendance",
                        {"records": [{"guardian_id": g, "attended": rng.random() < 0.8} for g in guardians]},
                    )
                await api.post(f"{base}/held", {})
            bar.advance(task)
        await online_parent_school(api, [g for gs in guardians_by_district.values() for g in gs], rng, counts)

    # The lecturer group (32 teachers in the seed) and their publicity lectures.
    lecturers = [s for s in city.staff if "principal" not in s.roles][:: max(1, len(city.staff) // 32)][:32]
    topics = ["family_education_promotion_law", "national_guidance_outline", "ministry_guidance"]
    headcounts = [rng.randint(80, 600) for _ in lecturers]  # drawn in order, so a seed gives the same lectures
    with progress() as bar:
        task = bar.add_task("lecturer group and lectures", total=len(lecturers))

        async def lecture(i: int, s: Any) -> None:
            async with sem:
                lec = await api.post("/lecturers", {"org_unit_id": CITY.strip("/"), "staff_id": s.staff_id})
                district = districts(city)[i % len(districts(city))]
                await api.post(
                    "/lectures",
                    {
                        "lecturer_id": lec["lecturer_id"],
                        "topic": topics[i % 3],
                        "given_on": (today - timedelta(days=i)).isoformat(),
                        "audience_org_unit_ids": [district.org_unit_id],
                        "headcount": headcounts[i],
                    },
                )
                counts["lectures"] += 1
                bar.advance(task)

        await asyncio.gather(*(lecture(i, s) for i, s in enumerate(lecturers)))
    return counts


async def online_parent_school(api: Api, guardians: list[str], rng: random.Random, counts: dict[str, int]) -> None:
    """The city's online parent school: two online sessions with the platform's join link; the online platform
    reports each guardian's minutes connected (20 or more counts as attending)."""
    today = local_date(datetime.now(UTC))  # the bureau's calendar, as the services count it
    ps = await api.post(
        "/parent-schools", {"org_unit_id": CITY.strip("/"), "kind": "online", "name": "白银市线上家长学校"}
    )
    counts["parent_schools"] += 1
    for n, topic in enumerate(["网络时代的亲子陪伴", "青春期心理与家庭沟通"]):
        held_on = (today - timedelta(days=3 * (n + 1))).isoformat()
        session = await api.post(
            f"/parent-schools/{ps['parent_school_id']}/sessions", {"topic": topic, "held_on": held_on, "mode": "online"}
        )
        counts["sessions"] += 1
        base = f"/parent-schools/{ps['parent_school_id']}/sessions/{session['session_id']}"
        if guardians:
            await api.post(f"{base}/enrolments", {"guardian_ids": guardians})
            minutes = [{"guardian_id": g, "minutes": rng.choice([0, 5, 25, 45, 60, 90])} for g in guardians]
            await api.post(f"{base}/online-attendance", {"records": minutes})
            counts["online_reports"] = counts.get("online_reports", 0) + len(minutes)
        await api.post(f"{base}/held", {})


async def launch_campaign(
    visits: Api, name: str, launched: Callable[[], None] | None = None
) -> tuple[str, list[dict[str, Any]], list[str], date]:
    """Create and launch a city-wide campaign over the last and next 30 days; its id, assignments, checklist
    item ids and first day. `launched` is called as soon as the launch is answered (committed)."""
    today = local_date(datetime.now(UTC))  # the bureau's calendar, as the services count it
    starts_on = today - timedelta(days=30)
    body = {
        "name": name,
        "org_path": CITY,
        "starts_on": starts_on.isoformat(),
        "ends_on": (today + timedelta(days=30)).isoformat(),
    }
    cid = (await visits.post("/campaigns", body))["campaign_id"]
    await visits.post(f"/campaigns/{cid}/launch", {})
    if launched is not None:
        launched()
    checklist = [i["id"] for i in (await visits.get("/checklists/current"))["items"]]
    assignments = await visits.every(f"/campaigns/{cid}/assignments", limit=1000)
    return cid, assignments, checklist, starts_on


async def teacher_app_users(committees: Api, visits: Api) -> list[dict[str, str]]:
    """The teacher app's demo (/app/): a campaign for one school left open (every visit of the city's campaign is
    recorded already), and the development sign-in list — three of its teachers, each with a dev token."""
    school = (await committees.get("/org-units", level="school", limit=1))["items"][0]
    today = local_date(datetime.now(UTC))  # the bureau's calendar, as the services count it
    body = {
        "name": "春季家访 · 教师应用演示",
        "org_path": school["org_path"],
        "starts_on": (today - timedelta(days=7)).isoformat(),
        "ends_on": (today + timedelta(days=30)).isoformat(),
    }
    cid = (await visits.post("/campaigns", body))["campaign_id"]
    await visits.post(f"/campaigns/{cid}/launch", {})
    page = await visits.get(f"/campaigns/{cid}/assignments", limit=1000)
    users = []
    for teacher_id, _ in Counter(a["teacher_id"] for a in page["items"]).most_common(3):
        staff = await committees.get(f"/staff/{teacher_id}")
        token = issue_token(
            role="teacher", org_path=staff["org_path"], staff_id=teacher_id, subject=f"teacher-{teacher_id}"
        )
        name = staff.get("name") or teacher_id
        users.append(
            {"name": name, "role": "teacher", "token": token, "staff_id": teacher_id, "org_path": staff["org_path"]}
        )
    return users


def _idp_accounts(idp: IdentityProvider, users: list[dict[str, str]]) -> str:
    """The demo teachers as users of the local identity provider (OIDC sign-in), each with a fresh password; the
    usernames and passwords go to an owner-only file in the devstack folder, whose short path is returned."""
    accounts = [
        Account(f"teacher{i}", secrets.token_urlsafe(9), u["name"], ("teacher",), u["org_path"], u["staff_id"])
        for i, u in enumerate(users, 1)
    ]
    idp.write_users(accounts)
    path = state_dir() / "demo-idp-users"
    fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
    with os.fdopen(fd, "w", encoding="utf-8") as out:
        out.writelines(f"{a.username} {a.password} {a.name}\n" for a in accounts)
    path.chmod(0o600)
    shown = os.path.relpath(path)
    return shown if len(shown) < len(str(path)) else str(path)


async def run_campaign(
    visits: Api,
    rng: random.Random,
    *,
    single_share: float,
    clients: int = recorder.CLIENTS,
    keep_records: bool = False,
    arrange: Callable[[list[dict[str, Any]]], list[dict[str, Any]]] | None = None,
    habits: bool = True,
) -> dict[str, Any]:
    """Launch a city-wide campaign and record every assigned visit as the teachers would (`arrange` puts the
    assignments in an order of the caller's, so that one seed always gives each family the same record).

    With `habits`, each teacher records late or on the day, visits in pairs or alone, keeps up or falls behind.
    Which teacher a family gets depends on the services' ids, so a caller comparing two imports of one city
    record by record turns them off: every family's record then depends on the seed and its order alone."""
    launching = time.monotonic()
    with console.status("launching the home-visit campaign (assignments for every family)"):
        cid, assignments, checklist, starts_on = await launch_campaign(visits, "千师访万家 · 2026 秋季家访")
    launched = time.monotonic() - launching
    if arrange is not None:
        assignments = arrange(assignments)
    # Drawn in the assignments' order (the caller's `arrange`), not by id: ids differ from one city import to another.
    drawn = {t: teacher_habits(rng) for t in dict.fromkeys(a["teacher_id"] for a in assignments)} if habits else {}
    colleagues = colleague_of(assignments) if habits else {}
    records = [
        visit_record(rng, a, checklist, starts_on, 30, habits=drawn.get(t), colleague=colleagues.get(t))
        for a in assignments
        for t in [a["teacher_id"]]
    ]
    by_teacher: dict[str, list[dict[str, Any]]] = {}
    for a, r in zip(assignments, records, strict=True):
        by_teacher.setdefault(a["teacher_id"], []).append(r)
    for teacher, mine in by_teacher.items():  # those behind the plan have visited only some of their families yet
        if teacher in drawn:
            del mine[math.ceil(len(mine) * drawn[teacher].done) :]
    kept = {id(r) for mine in by_teacher.values() for r in mine}
    records = [r for r in records if id(r) in kept]  # in the assignments' (the caller's) order, not by teacher
    teachers = list(by_teacher)
    rng.shuffle(teachers)
    live = set(teachers[: int(len(teachers) * single_share)])  # record each visit as it happens, the rest upload later
    stats: dict[str, Any] = {
        "campaign_id": cid,
        "assignments": len(assignments),
        "recorded": 0,
        "findings": 0,
        "rejected": 0,
        "lost_answers": 0,
        "launch_seconds": launched,
    }
    started = time.monotonic()
    with progress() as bar:
        task = bar.add_task("teachers recording visits", total=len(records))

        def done(job: recorder.Job, stored: list[bool]) -> None:
            for record, ok in zip(job.records, stored, strict=True):
                stats["findings"] += len(record.get("findings", [])) if ok else 0
            bar.advance(task, len(job.records))

        jobs = recorder.teacher_jobs(by_teacher, live, rng)
        tally = await recorder.record(visits.base, jobs, clients, campaign_id=cid, done=done)
    if tally.failed:
        raise RuntimeError(f"{len(tally.failed)} visit requests failed, the first: {tally.failed[0]}")
    stats.update(recorded=tally.stored, rejected=tally.rejected, lost_answers=tally.lost_answers)
    stats["seconds"] = time.monotonic() - started
    if keep_records:
        stats["records"] = records
    return stats


def colleague_of(assignments: list[dict[str, Any]]) -> dict[str, str | None]:
    """The colleague each teacher visits with: the next teacher of the same school (None when alone there)."""
    by_school: dict[str, list[str]] = {}
    for a in assignments:
        school = "/".join(a["org_path"].split("/")[:4])
        if a["teacher_id"] not in by_school.setdefault(school, []):
            by_school[school].append(a["teacher_id"])
    out: dict[str, str | None] = {}
    for teachers in by_school.values():
        for i, t in enumerate(teachers):
            out.setdefault(t, teachers[(i + 1) % len(teachers)] if len(teachers) > 1 else None)
    return out


async def department_answers(outreach_url: str) -> int:
    """The civil-affairs bureau acknowledges every referral addressed to it, with its own partner token, from a
    system that keeps 16 requests in flight on the recorder's lean connections (one at a time, its 6,600 answers took
    the demo a minute; through httpx the demo's own process spent as much CPU as outreach), each answer under an
    Idempotency-Key so that a request lost with its connection may be sent again."""
    token = issue_token(role="department_partner", org_path=CITY, department="civil_affairs", subject="civil-affairs")
    api = Api(outreach_url, token)
    conns = [recorder.Connection(outreach_url + "/api/v1") for _ in range(16)]
    note = {"note": "received, contacting the family"}

    async def acknowledge(conn: recorder.Connection, ids: Iterator[str]) -> None:
        for referral_id in ids:
            path = f"/referrals/{referral_id}/acknowledge"
            await recorder.call(conn, "POST", path, token, note, key=f"acknowledge-{referral_id}")

    done = 0
    try:
        while True:
            items = (await api.get("/referrals", state="requested", limit=500))["items"]
            if not items:
                return done
            ids = iter([ref["referral_id"] for ref in items])
            await asyncio.gather(*(acknowledge(conn, ids) for conn in conns))
            done += len(items)
    finally:
        await api.close()
        for conn in conns:
            conn.close()


CARER_ROLES = {"class_teacher", "mental_health_teacher", "vice_principal", "principal"}


async def carers_give_addresses(outreach_url: str, city: citygen.City) -> int:
    """Every staff member who may care for a case gives their own address for notification mails (each with
    their own token: the inbox and the address are the caller's own)."""
    carers = [s for s in city.staff if CARER_ROLES & set(s.roles)]
    waiting = iter(carers)

    async def give() -> None:  # 16 connections (the recorder's lean client), each carer with their own token
        conn = recorder.Connection(outreach_url + "/api/v1")
        try:
            for staff in waiting:
                token = issue_token(
                    role="teacher", org_path=CITY, staff_id=staff.staff_id, subject=f"staff-{staff.staff_id}"
                )
                email = {"email": f"{staff.staff_id}@schools.example"}
                await recorder.call(conn, "PUT", "/notifications/email", token, email)
        finally:
            conn.close()

    await asyncio.gather(*(give() for _ in range(16)))
    return len(carers)


async def carers_mail(smtp: Any, expect_some: bool) -> int:
    """The notification mails the local SMTP server received (the sender passes every few seconds)."""
    for _ in range(60):
        n = len(smtp.messages())
        if n or not expect_some:
            return n
        await asyncio.sleep(1)
    return 0


def district_table(doc: dict[str, Any]) -> Table:
    """The city summary: one row per district or county, and the city total."""
    table = Table(title="白银市 Baiyin City · home-visit campaign (from the reporting API)")
    for col in (
        "district / county",
        "families",
        "visited",
        "coverage",
        "visits",
        "findings",
        "cases open",
        "overdue",
        "referrals",
        "flagged",
    ):
        table.add_column(col, justify="left" if col.startswith("district") else "right")
    for row in [*doc["children"], doc["self"]]:
        f = row["figures"]
        cov = f["families"]["coverage"]
        refs = (
            sum(sum(states.values()) for states in f["referrals"].values()) if isinstance(f["referrals"], dict) else 0
        )
        table.add_row(
            row["name"] if row is not doc["self"] else "白银市 (city total)",
            f"{f['families']['assigned']:,}",
            f"{f['families']['visited']:,}",
            "-" if cov is None else f"{cov:.1%}",
            f"{f['visits']['completed']:,}",
            f"{f['findings']['total']:,}",
            f"{f['cases']['open']:,}",
            f"{f['cases']['overdue']:,}",
            f"{refs:,}",
            f"{f['requirements']['flagged_visits']:,}",
        )
    return table


def behind_table(doc: dict[str, Any], names: dict[str, str]) -> Table:
    """The teachers furthest behind the campaign's plan (what a school admin sees for their school)."""
    table = Table(title=f"teachers behind schedule today: {doc['behind']:,} (the {len(doc['teachers'])} furthest)")
    for col in ("teacher", "school", "families", "visited", "expected by today", "behind by"):
        table.add_column(col, justify="left" if col in ("teacher", "school") else "right")
    for x in doc["teachers"]:
        table.add_row(
            x["teacher_id"],
            names.get(x["school_path"], x["school_path"]),
            f"{x['assigned']:,}",
            f"{x['completed']:,}",
            f"{x['expected']:,}",
            f"{x['behind_by']:,}",
        )
    return table


async def main(scale: float, seed: int, single_share: float) -> None:
    rng = random.Random(seed)
    t0 = time.monotonic()
    with console.status("starting Kafka, PostgreSQL and the four services"):
        try:
            procs = await asyncio.to_thread(services_up)
        except DevstackError as exc:
            print(f"devstack could not start the system: {exc}", file=sys.stderr)
            sys.exit(1)
    urls = {p.name: p.address for p in procs if p.replica == 1}
    console.print(f"[green]stack up[/green] in {time.monotonic() - t0:.0f}s: " + ", ".join(urls.values()))
    token = bureau_token()
    committees = Api(urls["committees"], token, repeatable=True)
    visits, reporting = Api(urls["visits"], token), Api(urls["reporting"], token)
    try:
        city = citygen.generate(scale=scale, seed=seed)
        console.print(
            f"synthetic city (scale {scale}): {sum(1 for u in city.org_units if u.level == 'school')} "
            f"schools, {len(city.staff):,} staff, {len(city.students):,} students, "
            f"{len(city.families):,} families — generated names, no real people"
        )
        phases = Phases(t0)
        phases.end("stack and city")
        job = await import_city(committees, city)
        console.print(f"imported: {job['counts']}")
        phases.end("import")
        await cooperation(committees, city, rng)
        phases.end("cooperation")
        with console.status("visits and outreach copy the directory from committees' events"):
            await settled(procs)
        phases.end("directory")
        given = await carers_give_addresses(urls["outreach"], city)
        console.print(f"{given:,} carers gave an address for notification mails")
        phases.end("addresses")
        stats = await run_campaign(visits, rng, single_share=single_share)
        phases.took("launch", stats["launch_seconds"])
        phases.end("recording")
        console.print(
            f"recorded {stats['recorded']:,} visits with {stats['findings']:,} findings in "
            f"{stats['seconds']:.0f}s ({stats['recorded'] / stats['seconds']:,.0f} visits/s)"
        )
        with console.status("outreach opens cases, assigns carers and refers to departments"):
            await settled(procs)
        phases.end("catch-up")
        with console.status("civil affairs answers its referrals"):
            acked = await department_answers(urls["outreach"])
        console.print(f"civil affairs acknowledged {acked:,} referrals through its own token")
        phases.end("referrals answered")
        with console.status("waiting for reporting to catch up"):
            await settled(procs)
            doc = await reporting.get("/children", org_path=CITY, campaign_id=stats["campaign_id"])
            for _ in range(120):
                if (
                    doc["self"]["figures"]["visits"]["completed"] + doc["self"]["figures"]["visits"]["missed"]
                    >= stats["recorded"]
                ):
                    break
                await asyncio.sleep(1)
                doc = await reporting.get("/children", org_path=CITY, campaign_id=stats["campaign_id"])
        phases.end("reporting")
        console.print(district_table(doc))
        behind = await reporting.get("/reporting/teachers-behind", campaign_id=stats["campaign_id"], limit=10)
        console.print(behind_table(behind, {f"{CITY}/{u.parent_id}/{u.org_unit_id}": u.name for u in schools(city)}))
        flagged = doc["self"]["figures"]["requirements"]["flags_by_item"]
        topics = doc["self"]["figures"]["guidance_topics"]
        console.print(
            "visits flagged by the Ten Requirements: "
            + (", ".join(f"{item} {n:,}" for item, n in flagged.items()) or "none")
            + "\nguidance given: "
            + ", ".join(f"{topic} {n:,}" for topic, n in sorted(topics.items(), key=lambda x: -x[1]) if n)
        )
        with console.status("a follow-up, a leaver, a conflict and a duplicate child"):
            for line in await people_at_work(committees, urls["outreach"], token):
                console.print(line, soft_wrap=True)
        gateway_proc = Stack.from_env().gateway()
        app_users = await teacher_app_users(committees, visits)
        gateway_proc.write_dev_users(app_users)
        idp = Stack.from_env().idp()
        idp_users = _idp_accounts(idp, app_users) if idp else None
        attendance = doc["self"]["figures"]["structure"]["attendance"]
        console.print(
            f"parent schools: {attendance['attended']:,} guardians attended held sessions, "
            f"{attendance['by_channel']['online']:,} online (the city's online parent school) and "
            f"{attendance['by_channel']['in_person']:,} in person"
        )
        smtp = Stack.from_env().smtp()
        mails = await carers_mail(smtp, expect_some=stats["findings"] > 0)
        console.print(
            f"carers' notification mails (case assigned, due soon, escalated, referral answered): {mails:,} in the"
            f" local SMTP server's Maildir {smtp.maildir} (e.g. mutt -f {smtp.maildir}); each carer's in-app inbox:"
            " GET /api/v1/notifications with their token",
            soft_wrap=True,
        )
        phases.end("the rest")
        console.print(f"\nfinished in {time.monotonic() - t0:.0f}s: {phases}")
        console.print("The system keeps running for you to explore:")
        # One short URL per line and no token in any URL: a narrow console wraps nothing a reader must copy,
        # and a token never lands in the browser history. The dashboard's sign-in box takes the token.
        token_file = _save_token(token)
        gateway = gateway_proc.address
        console.print(
            f"  teacher app {gateway}/app/  (offline PWA; development sign-in: pick a demo teacher)", soft_wrap=True
        )
        if idp and idp_users:
            console.print(f"              or the identity provider {idp.address} (OIDC): {idp_users}", soft_wrap=True)
        console.print(f"  gateway     {gateway}  (every /api/v1/... on one origin)", soft_wrap=True)
        console.print(f"  dashboard   {gateway}/dashboard", soft_wrap=True)
        console.print(f"              sign in with the token in {token_file}", soft_wrap=True)
        console.print(f"  API docs    {gateway}/docs/", soft_wrap=True)
        console.print(f"  metrics     /metrics on each service: {', '.join(urls.values())}", soft_wrap=True)
        console.print("  a token for any role:", soft_wrap=True)
        console.print("    .venv/bin/python -m shared.auth --role school_admin --org-path /620400/620402")
        console.print("  status: make status   stop: make stack-down   logs: .devstack/logs/", soft_wrap=True)
    finally:
        for api in (committees, visits, reporting):
            await api.close()


class Phases:
    """Wall seconds of the demo's steps, in order (the first from the start: starting the stack included)."""

    def __init__(self, started: float) -> None:
        self.mark = started
        self.seconds: dict[str, float] = {}

    def took(self, name: str, seconds: float) -> None:
        """A step inside the next one, timed by the caller (taken out of the next step's time)."""
        self.seconds[name] = seconds
        self.mark += seconds

    def end(self, name: str) -> None:
        self.seconds[name] = time.monotonic() - self.mark
        self.mark = time.monotonic()

    def __str__(self) -> str:
        return ", ".join(f"{name} {s:.0f}s" for name, s in self.seconds.items())


def _save_token(token: str) -> str:
    """Write the bureau token to the devstack folder (owner-only) and return a short path to it."""
    path = state_dir() / "demo-token"
    path.parent.mkdir(parents=True, exist_ok=True)
    # Created owner-only (no moment with the umask's mode), and narrowed if an older file was wider.
    fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
    with os.fdopen(fd, "w", encoding="utf-8") as out:
        out.write(token + "\n")
    path.chmod(0o600)
    shown = os.path.relpath(path)
    return shown if len(shown) < len(str(path)) else str(path)


def cli() -> None:
    ap = argparse.ArgumentParser(description=__doc__)
    ap.add_argument("--scale", type=float, default=0.05, help="share of the full city (1 = 18,000 teachers)")
    ap.add_argument("--seed", type=int, default=7)
    ap.add_argument("--single-share", type=float, default=0.2, help="share of teachers recording visit by visit")
    args = ap.parse_args()
    asyncio.run(main(args.scale, args.seed, args.single_share))


if __name__ == "__main__":
    cli()
