"""Teachers sending their visit records to visits: one lean HTTP client and one recording loop, shared by the demo
(`demo.__main__.run_campaign`, which the e2e and fault tests drive too) and the benchmarks (`bench/campaign.py`,
`bench/soak.py`, `bench/visits_record.py`).

The recorder shares two cores with the services it loads, so it costs little CPU per request: a plain keep-alive
HTTP/1.1 connection per concurrent client (httpx cost about as much CPU per request as the service answering it).
What the teachers do is the same everywhere:
  * a teacher recording live sends each visit as it happens (`POST /visits`, no Idempotency-Key). When the answer is
    lost (the service died or restarted before answering), the teacher's app looks at the assignment before sending
    again: stored already (its status moved on) means done; still `assigned` means send it again;
  * an offline upload (`POST /visits/batch`) carries an Idempotency-Key, so it is simply sent again;
  * 502/503/504 (a service catching up or a replica away) are retried after a pause.
"""

from __future__ import annotations

import asyncio
import random
import time
import uuid
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass, field
from typing import Any
from urllib.parse import urlencode, urlsplit

import orjson

from demo.client import CITY
from shared.auth import issue_token

CLIENTS = 96  # concurrent connections of the teachers' apps (of 18,000 teachers in the full city)
RETRIES = 20  # tries of one request while the service is away (0.5 s, 1 s, … apart: about 100 s in all)
LOST = (OSError, asyncio.IncompleteReadError, ValueError, IndexError)  # no answer (or half of one) on the connection


class Connection:
    """A minimal HTTP/1.1 keep-alive client: one connection, one request at a time; opened on first use and again
    after it was lost (every failure closes it)."""

    def __init__(self, base: str) -> None:
        url = urlsplit(base)
        self.host, self.port = url.hostname or "127.0.0.1", url.port or 80
        self.prefix = url.path.rstrip("/")
        self.io: tuple[asyncio.StreamReader, asyncio.StreamWriter] | None = None

    async def request(
        self, method: str, path: str, body: bytes = b"", headers: dict[str, str] | None = None
    ) -> tuple[int, bytes]:
        """(status, body) of one request; raises one of `LOST` when the connection fails before the whole answer."""
        if self.io is None:
            self.io = await asyncio.open_connection(self.host, self.port)
        reader, writer = self.io
        head = f"{method} {self.prefix}{path} HTTP/1.1\r\nHost: {self.host}\r\nContent-Length: {len(body)}\r\n"
        if body:
            head += "Content-Type: application/json\r\n"
        try:
            writer.write((head + "".join(f"{k}: {v}\r\n" for k, v in (headers or {}).items()) + "\r\n").encode() + body)
            status = int((await reader.readline()).split()[1])
            length, chunked, close = 0, False, False
            while (line := await reader.readline()) not in (b"\r\n", b""):
                name, _, value = line.partition(b":")
                name, value = name.strip().lower(), value.strip().lower()
                if name == b"content-length":
                    length = int(value)
                elif name == b"transfer-encoding":
                    chunked = b"chunked" in value
                elif name == b"connection":
                    close = value == b"close"
            data = await _chunked(reader) if chunked else await reader.readexactly(length)
        except BaseException:
            self.close()
            raise
        if close:
            self.close()
        return status, data

    async def post(self, path: str, body: bytes, headers: dict[str, str]) -> tuple[int, bytes]:
        return await self.request("POST", path, body, headers)

    def close(self) -> None:
        if self.io is not None:
            self.io[1].close()
            self.io = None


async def _chunked(reader: asyncio.StreamReader) -> bytes:
    parts = []
    while size := int((await reader.readline()).split(b";")[0], 16):
        parts.append(await reader.readexactly(size))
        await reader.readexactly(2)
    await reader.readline()  # the empty trailer
    return b"".join(parts)


@dataclass(frozen=True)
class Job:
    """One request a teacher's app sends: a visit recorded live (`teacher_id` set: whose assignments to look at when
    the answer is lost) or an offline upload of several (`POST /visits/batch`)."""

    records: list[dict[str, Any]]
    token: str
    teacher_id: str | None = None
    key: str = field(default_factory=lambda: uuid.uuid4().hex)  # an upload's Idempotency-Key, kept over its retries

    @property
    def live(self) -> bool:
        return self.teacher_id is not None

    @property
    def path(self) -> str:
        return "/visits" if self.live else "/visits/batch"

    def body(self) -> bytes:
        return orjson.dumps(self.records[0] if self.live else {"visits": self.records})


def teacher_jobs(by_teacher: dict[str, list[dict[str, Any]]], live: set[str], rng: random.Random) -> list[Job]:
    """The requests of the teachers' apps, each with its teacher's token, interleaved (shuffled with `rng`): the
    `live` teachers' visits one by one, every other teacher's in one offline upload."""
    jobs: list[Job] = []
    for tid, records in by_teacher.items():
        token = issue_token(role="teacher", org_path=CITY, staff_id=tid, subject=f"teacher-{tid}")
        if tid in live:
            jobs += [Job([r], token, tid) for r in records]
        elif records:
            jobs.append(Job(records, token))
    rng.shuffle(jobs)
    return jobs


@dataclass
class Tally:
    """What the recording did: visits stored and rejected, requests that failed, answers lost, latencies (ms, of the
    answered attempt's whole request: retries included), and the monotonic times of the first send and last answer."""

    stored: int = 0
    rejected: int = 0
    failed: list[str] = field(default_factory=list)
    lost_answers: int = 0
    single_ms: list[float] = field(default_factory=list)
    batch_ms: list[float] = field(default_factory=list)
    first: float = 0.0
    last: float = 0.0


# Called after each job with the job and, per record it carried, whether it is stored.
Done = Callable[[Job, list[bool]], None]


async def record(
    base: str | Sequence[str],
    jobs: Iterable[Job],
    clients: int,
    *,
    campaign_id: str | None = None,
    done: Done | None = None,
) -> Tally:
    """Send every job to visits at `base` (its address, `/api/v1` added; several replicas' addresses: the
    connections spread over them in turn) from `clients` keep-alive connections, each taking the next job when its
    last is answered. A live visit whose answer is lost is looked up among its teacher's assignments of
    `campaign_id` before it is sent again."""
    it = iter(jobs)
    tally = Tally(first=time.monotonic())
    bases = [base] if isinstance(base, str) else list(base)

    async def client(i: int) -> None:
        conn = Connection(bases[i % len(bases)].rstrip("/") + "/api/v1")
        try:
            for job in it:
                t = time.perf_counter()
                status, text = await _send(conn, job, campaign_id, tally)
                (tally.single_ms if job.live else tally.batch_ms).append(1000 * (time.perf_counter() - t))
                if status == 201 or status == 0:  # 0: found stored after its answer was lost
                    stored = [True]
                elif status == 200:
                    stored = [item["result"] == "stored" for item in orjson.loads(text)["results"]]
                else:
                    stored = [False] * len(job.records)
                    tally.failed.append(f"{status} {text[:200]!r}")
                tally.stored += sum(stored)
                tally.rejected += len(stored) - sum(stored) if status == 200 else 0
                tally.last = time.monotonic()
                if done is not None:
                    done(job, stored)
        finally:
            conn.close()

    await asyncio.gather(*(client(i) for i in range(clients)))
    return tally


async def _send(conn: Connection, job: Job, campaign_id: str | None, tally: Tally) -> tuple[int, bytes]:
    """One job's answer (status, body); 0 when a live visit's answer was lost and the visit is found stored."""
    headers = {"Authorization": f"Bearer {job.token}"}
    if not job.live:
        headers["Idempotency-Key"] = job.key  # an offline app retries its upload safely
    body = job.body()
    for attempt in range(RETRIES):
        try:
            status, text = await conn.post(job.path, body, headers)
        except LOST:
            if attempt == RETRIES - 1:
                raise
            if job.live and campaign_id is not None:
                tally.lost_answers += 1
                if await _stored(conn, job, campaign_id):
                    return 0, b""
            else:
                await asyncio.sleep(0.5 * (attempt + 1))
            continue
        if status in (502, 503, 504) and attempt < RETRIES - 1:
            await asyncio.sleep(0.5 * (attempt + 1))
            continue
        return status, text
    raise AssertionError("unreachable")


async def _stored(conn: Connection, job: Job, campaign_id: str) -> bool:
    """Whether a live visit whose answer was lost is stored: its assignment, among its teacher's, has moved on from
    `assigned` (pages of the teacher's assignments, read until it is found)."""
    assignment_id, cursor = job.records[0]["assignment_id"], None
    while True:
        query = {"teacher_id": job.teacher_id, "limit": 200, **({"cursor": cursor} if cursor else {})}
        page = await _get(conn, f"/campaigns/{campaign_id}/assignments?{urlencode(query)}", job.token)
        mine = {a["assignment_id"]: a["status"] for a in page["items"]}
        if assignment_id in mine:
            return mine[assignment_id] != "assigned"
        cursor = page["next_cursor"]
        if cursor is None:
            raise RuntimeError(f"assignment {assignment_id} is not the teacher's")


async def _get(conn: Connection, path: str, token: str) -> Any:
    return await call(conn, "GET", path, token)


async def call(
    conn: Connection, method: str, path: str, token: str, body: Any = None, *, key: str | None = None
) -> Any:
    """A request that must succeed (a read, a write that may be repeated: a PUT, or a POST under the Idempotency-Key
    `key`), tried again while the service is away (unreachable, restarting, 502/503/504); its JSON answer."""
    data = b"" if body is None else orjson.dumps(body)
    headers = {"Authorization": f"Bearer {token}", **({"Idempotency-Key": key} if key else {})}
    for attempt in range(RETRIES):
        try:
            status, text = await conn.request(method, path, data, headers)
        except LOST:
            status, text = 599, b"connection lost"
        if status in (200, 201, 202):
            return orjson.loads(text) if text else None
        if status not in (502, 503, 504, 599) or attempt == RETRIES - 1:
            raise RuntimeError(f"{method} {path} → {status}: {text[:300]!r}")
        await asyncio.sleep(0.5 * (attempt + 1))
    raise AssertionError("unreachable")
