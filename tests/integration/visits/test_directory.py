"""The directory copy follows committees' events, whatever order they arrive in."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from functools import partial

import pytest

from services.visits.handlers import GROUP
from shared.contracts import committees as c
from shared.contracts.common import StaffRole
from shared.directory import TOPICS
from shared.testing.fixtures import caught_up, wait_for
from tests.integration.visits.conftest import Env, bearer, completed
from tests.integration.visits.directory import publish

pytestmark = pytest.mark.integration

CLASS1 = "/620400/620402/620402s1/620402s1g1/620402s1g1c1"
CLASS2 = "/620400/620402/620402s1/620402s1g1/620402s1g1c2"


async def test_late_older_events_do_not_overwrite_newer_facts_and_leavers_are_marked(env: Env):
    now = datetime.now(UTC)
    older, newer = now - timedelta(minutes=5), now
    await publish(
        env.settings,
        [
            # The move arrives before the registration it follows.
            c.StudentChanged(
                student_id="st-new", class_id="620402s1g1c2", org_path=CLASS2, family_id="f-new", occurred_at=newer
            ),
            c.StudentRegistered(
                student_id="st-new", class_id="620402s1g1c1", org_path=CLASS1, family_id="f-new", occurred_at=older
            ),
            c.StaffChanged(
                staff_id="t-620402s1g1c1", org_path="/620400/620402/620402s1", roles=[StaffRole.SUBJECT_TEACHER],
                class_ids=["620402s1g1c2"], head_class_id=None, occurred_at=newer,
            ),
            c.StaffLeft(staff_id="t-620402s1-sub0", org_path="/620400/620402/620402s1", occurred_at=newer),
            c.StudentLeft(student_id="st-620402s1g1c3-0", org_path=CLASS1, occurred_at=newer),
        ],
    )  # fmt: skip
    schema = env.settings.db_schema

    # Applied: the directory group's offsets committed to the end of its topics (the copy keeps no inbox rows).
    topics = [env.settings.topic(t) for t in TOPICS]
    group = env.settings.topic_prefix + GROUP
    await wait_for(partial(caught_up, env.settings.kafka_bootstrap_servers, group, topics), timeout=30)
    row = await env.db.fetchrow(f'SELECT * FROM "{schema}".students WHERE student_id = $1', "st-new")
    assert (row["class_id"], row["org_path"], row["family_id"]) == ("620402s1g1c2", CLASS2, "f-new")
    staff = await env.db.fetchrow(f'SELECT * FROM "{schema}".staff WHERE staff_id = $1', "t-620402s1g1c1")
    assert (staff["head_class_id"], staff["roles"], staff["active"]) == (None, ["subject_teacher"], True)
    assert not await env.db.fetchval(f"SELECT active FROM \"{schema}\".staff WHERE staff_id = 't-620402s1-sub0'")
    assert not await env.db.fetchval(f"SELECT active FROM \"{schema}\".students WHERE student_id = 'st-620402s1g1c3-0'")

    # A campaign launched now uses the updated copy: the leaver and the ex-class-teacher's old role count.
    launched = await env.launch(org_path="/620400/620402/620402s1")
    rows = await env.assignments(launched["campaign_id"])
    assert "t-620402s1-sub0" not in {r["teacher_id"] for r in rows}
    assert "f-620402s1g1c3-0" not in {r["family_id"] for r in rows}
    assert "f-new" in {r["family_id"] for r in rows}


async def test_a_merged_duplicate_child_is_followed_by_findings_and_assignments(env: Env):
    """committees merges a duplicate record: visits' findings and assignments name the surviving child, once, and
    the directory copy drops the duplicate like a leaver."""
    cid = (await env.launch())["campaign_id"]
    rows = await env.assignments(cid)
    shared = next(r for r in rows if "shared" in r["family_id"])  # a family of two children
    dup, keep = shared["student_ids"]
    finding = {"student_id": dup, "category": "left_behind", "severity": "high"}
    teacher = bearer("teacher", env.directory.teachers[shared["teacher_id"]], shared["teacher_id"])
    r = await env.http.post("/api/v1/visits", json=completed(shared["assignment_id"], [finding]), headers=teacher)
    assert r.status_code == 201, r.text
    merged = c.StudentMerged(
        student_id=dup, merged_into=keep, org_path=env.directory.student_path[dup], occurred_at=datetime.now(UTC)
    )
    await publish(env.settings, [merged])
    schema = env.settings.db_schema

    async def followed() -> bool:
        ids = await env.db.fetchval(
            f'SELECT student_ids FROM "{schema}".assignments WHERE assignment_id = $1', shared["assignment_id"]
        )
        return list(ids) == [keep]

    await wait_for(followed, timeout=30)
    assert await env.count("findings", f"student_id = '{keep}'") == 1
    assert await env.count("findings", f"student_id = '{dup}'") == 0
    assert await env.count("students", f"student_id = '{dup}' AND active") == 0
