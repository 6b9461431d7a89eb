"""The optimistic-concurrency rule of the kit: ETags, If-Match parsing, stale or not, 412/428 and their documents."""

from __future__ import annotations

import re
from typing import Any

import pytest
from fastapi import APIRouter, FastAPI
from fastapi.testclient import TestClient

from shared import openapi, problems, versions


def test_etag_is_the_version_as_a_strong_tag() -> None:
    assert versions.etag(7) == '"7"'
    assert versions.parse(versions.etag(7)) == versions.Precondition(False, frozenset({7}))


@pytest.mark.parametrize(
    ("header", "current", "stale"),
    [
        ('"3"', 3, False),
        ('"2"', 3, True),  # someone changed it since: refused
        ('"2", "3"', 3, False),  # any of a list matches
        ("*", 99, False),  # any version
        (" * ", 1, False),
        ('W/"3"', 3, True),  # weak tags never match (If-Match uses the strong comparison)
        ('"abc"', 3, True),  # a tag this server never made matches nothing
        ('""', 1, True),
    ],
)
def test_stale_rule(header: str, current: int, stale: bool) -> None:
    assert re.fullmatch(versions.PATTERN, header)
    assert versions.stale(current, versions.parse(header)) is stale


def test_no_header_is_never_stale() -> None:
    assert versions.stale(5, None) is False


def test_malformed_headers_break_the_documented_pattern() -> None:
    for bad in ("3", "W/3", '"3', "**", '"a" "b"', ""):
        assert not re.fullmatch(versions.PATTERN, bad), bad


def test_check_raises_412_with_the_current_version_and_etag() -> None:
    versions.check(4, versions.parse('"4"'))
    with pytest.raises(problems.Problem) as caught:
        versions.check(4, versions.parse('"3"'))
    p = caught.value
    assert p.status == 412 and p.headers == {"ETag": '"4"'}
    body = p.body()
    assert body["version"] == 4 and body["errors"][0]["pointer"] == "/header/If-Match"
    problems.ProblemDocument.model_validate(body)  # the documented schema holds the extension


def _app() -> FastAPI:
    router = APIRouter()

    @router.get("/things/{thing_id}")
    async def get_thing(thing_id: str, tag: versions.Tag) -> dict[str, Any]:
        tag(5)
        return {"thing_id": thing_id, "version": 5}

    @router.patch("/things/{thing_id}")
    async def change_thing(thing_id: str, if_match: versions.IfMatchRequired) -> dict[str, Any]:
        versions.check(5, if_match)
        return {"thing_id": thing_id, "version": 6}

    @router.post("/things/{thing_id}/close")
    async def close_thing(thing_id: str, if_match: versions.IfMatch) -> dict[str, Any]:
        versions.check(5, if_match)
        return {"thing_id": thing_id, "version": 6}

    app = FastAPI()
    app.include_router(router)
    problems.install(app)
    return app


def test_patch_without_if_match_is_428_and_state_changes_may_omit_it() -> None:
    http = TestClient(_app())
    r = http.patch("/things/a")
    assert r.status_code == 428 and r.headers["content-type"] == problems.MEDIA_TYPE
    assert r.json()["errors"][0]["pointer"] == "/header/If-Match"
    assert http.patch("/things/a", headers={"If-Match": '"5"'}).status_code == 200
    assert http.patch("/things/a", headers={"If-Match": "*"}).status_code == 200
    r = http.patch("/things/a", headers={"If-Match": '"4"'})
    assert r.status_code == 412 and r.headers["etag"] == '"5"' and r.json()["version"] == 5
    assert http.patch("/things/a", headers={"If-Match": "4"}).status_code == 422  # not an entity tag
    assert http.post("/things/a/close").status_code == 200
    assert http.post("/things/a/close", headers={"If-Match": '"4"'}).status_code == 412
    assert http.get("/things/a").headers["etag"] == '"5"'


def test_the_document_says_if_match_412_428_and_etag() -> None:
    app = _app()
    doc = openapi.polish(app, app.openapi())
    patch = doc["paths"]["/things/{thing_id}"]["patch"]
    [header] = [p for p in patch["parameters"] if p["in"] == "header"]
    assert header["name"] == "If-Match" and header["required"] is True
    assert {"412", "428"} <= set(patch["responses"])
    assert "ETag" in patch["responses"]["412"]["headers"] and "ETag" in patch["responses"]["200"]["headers"]
    close = doc["paths"]["/things/{thing_id}/close"]["post"]
    [header] = [p for p in close["parameters"] if p["in"] == "header"]
    assert not header.get("required") and "412" in close["responses"] and "428" not in close["responses"]
    assert "ETag" in doc["paths"]["/things/{thing_id}"]["get"]["responses"]["200"]["headers"]
