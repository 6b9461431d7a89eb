"""Every outreach route that returns personal data (contact outcomes, referral notes) writes exactly one audit row."""

from __future__ import annotations

from typing import Any

import httpx
import pytest

from services.outreach.app import create
from services.outreach.settings import OutreachSettings
from shared.clock import ManualClock
from shared.contracts.common import Category, Severity
from shared.testing.fixtures import serve, wait_for
from tests.audit_coverage import Call, Route, assert_each_audited
from tests.integration.outreach.helpers import family, finding, publish, school_staff, student
from tests.integration.outreach.test_referrals_api import DPF, SCHOOL_ADMIN, _directory_loaded, _json

pytestmark = pytest.mark.integration


async def test_every_personal_route_writes_exactly_one_audit_row(make_settings):
    settings = make_settings(OutreachSettings, scheduler_enabled=False)
    async with serve(create(settings, ManualClock())) as url, httpx.AsyncClient(base_url=url) as http:
        await publish(settings, [*school_staff(), student("stu-d"), family("fam-stu-d", ["stu-d"], away=True)])
        await _directory_loaded(http, settings)
        await publish(settings, [finding("stu-d", Category.DISABILITY, Severity.HIGH)])
        [ref] = await wait_for(lambda: _json(http.get("/api/v1/referrals", headers=DPF)), timeout=15)

        async def read_case(h: httpx.AsyncClient, ctx: dict[str, Any]) -> httpx.Response:
            return await h.get(f"/api/v1/cases/{ref['case_id']}", headers=SCHOOL_ADMIN)

        async def read_referral(h: httpx.AsyncClient, ctx: dict[str, Any]) -> httpx.Response:
            return await h.get(f"/api/v1/referrals/{ref['referral_id']}", headers=DPF)

        calls: dict[Route, Call] = {
            ("outreach", "GET", "/api/v1/cases/{case_id}"): read_case,
            ("outreach", "GET", "/api/v1/referrals/{referral_id}"): read_referral,
        }
        rows = await assert_each_audited("outreach", calls, http, settings.database_url, settings.db_schema)
        assert {r["resource_type"]: r["subject_ids"] for r in rows.values()} == {
            "case": ["stu-d"],
            "referral": ["stu-d"],
        }
