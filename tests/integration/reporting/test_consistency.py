"""The consistency check compares the read model with the owners' APIs (stand-ins serving the scripted truth)."""

from __future__ import annotations

from typing import Any

import pytest
from fastapi import FastAPI

from services.reporting.usecases.consistency import print_report, run_check
from shared.testing.fixtures import serve
from tests.integration.reporting import scenario

pytestmark = pytest.mark.integration


def owners(truth: dict[str, Any]) -> FastAPI:
    """Stand-ins for the visits, outreach and committees endpoints the check documents."""
    app = FastAPI()

    @app.get("/api/v1/campaigns/{campaign_id}/progress")
    async def progress(campaign_id: str, by: str, org_path: str) -> Any:
        assert (campaign_id, by, org_path) == (scenario.CAMPAIGN, "district", scenario.CITY)
        return {"campaign_id": campaign_id, "by": by, "units": truth["progress"]}

    @app.get("/api/v1/cases")
    async def cases(org_path: str, limit: int, cursor: str | None = None) -> Any:
        start = int(cursor or 0)  # two per page, fewer than asked: the check follows next_cursor to the end
        more = start + 2 < len(truth["cases"])
        return {"items": truth["cases"][start : start + 2], "next_cursor": str(start + 2) if more else None}

    @app.get("/api/v1/org-units")
    async def org_units(under: str, level: str, limit: int, cursor: str | None = None) -> Any:
        items = [{"org_unit_id": f"{level}{i}"} for i in range(truth["units"][level])]
        return {"items": items, "next_cursor": None}

    return app


def scripted_truth() -> dict[str, Any]:
    modes = {"in_home": 0, "online": 0, "phone": 0, "at_school": 0}
    return {
        "progress": [
            {
                "org_path": scenario.D1,
                "assigned": 5,
                "completed": 4,
                "teachers": 3,
                "by_mode": {**modes, "in_home": 1, "online": 1, "phone": 1, "at_school": 1},
            },
            {"org_path": scenario.D2, "assigned": 1, "completed": 1, "teachers": 1, "by_mode": {**modes, "in_home": 1}},
        ],
        "cases": [
            {"case_id": "k1", "org_path": scenario.S1C1, "state": "in_progress", "overdue": False},
            {"case_id": "k2", "org_path": scenario.S2C1, "state": "open", "overdue": True},
            {"case_id": "k3", "org_path": scenario.S1C1, "state": "closed", "overdue": False},
        ],
        "units": {"school": 3, "grade": 3, "class": 4},
    }


async def test_consistency_check_finds_no_difference_then_reports_one(reporting, capsys):
    messages = scenario.envelopes(scenario.all_events())
    await scenario.publish(reporting.settings, messages)
    await reporting.converge(messages)
    truth = scripted_truth()
    async with serve(owners(truth)) as url:
        settings = reporting.settings.model_copy(update={"visits_url": url, "outreach_url": url, "committees_url": url})
        rep = await run_check(settings, scenario.CITY, None, reporting.token)
        assert rep.unavailable == []
        assert rep.diffs == []
        assert rep.compared > 30
        assert print_report(rep) == 0

        truth["cases"].pop(1)  # the owner lost a case the read model still shows
        truth["progress"][1]["completed"] = 0
        rep = await run_check(settings, scenario.CITY, None, reporting.token)
        found = {(d.figure, d.org_path, d.owner, d.reporting) for d in rep.diffs}
        assert ("cases.opened", scenario.CITY, 2, 3) in found
        assert ("cases.overdue", scenario.D1, 0, 1) in found
        assert ("visits.completed", scenario.D2, 0, 1) in found
        assert ("visits.completed", scenario.CITY, 4, 5) in found
        assert print_report(rep) == 1
        assert "DIFF cases.opened" in capsys.readouterr().out

    settings = reporting.settings.model_copy(
        update={"visits_url": "http://127.0.0.1:9", "outreach_url": "http://127.0.0.1:9"}
    )
    rep = await run_check(
        settings.model_copy(update={"committees_url": "http://127.0.0.1:9"}), scenario.CITY, None, reporting.token
    )
    assert len(rep.unavailable) == 3 and print_report(rep) == 2
