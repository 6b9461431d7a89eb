"""Typed clients generated from the services' OpenAPI documents, as served by the gateway, by the standard
generators (openapi-typescript + openapi-fetch compiled with tsc --strict; openapi-python-client checked with
mypy --strict --disallow-any-expr), drive a teacher's flow through the gateway on the real services: sign in
(dev token), list my assignments, a typed 422, record a visit with an Idempotency-Key (twice: one visit), read it
back, a typed 404."""

from __future__ import annotations

import datetime as dt
import importlib
import json
import os
import subprocess
import sys
import types
import typing
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest

from shared.auth import issue_token
from shared.devstack.gateway import Gateway
from tests.e2e.city import CityRun
from tests.e2e.gateway import school_campaign

pytestmark = [pytest.mark.e2e, pytest.mark.timeout(1200)]

ROOT = Path(__file__).resolve().parents[2]
CLIENTS = ROOT / "scripts" / "clients.sh"
BUREAU = {"Authorization": "Bearer " + issue_token(role="bureau_admin", org_path="/620400", subject="typed-admin")}
TODAY = dt.date.today()


@pytest.fixture(scope="module")
def teacher(city_gateway: Gateway, undisturbed: tuple[CityRun, dict[str, Any]]) -> dict[str, Any]:
    """A new campaign for one school, launched; a teacher of it with at least two families to visit."""
    return school_campaign(city_gateway, "typed-clients")


def generate(kind: str, gateway: Gateway, out: Path) -> None:
    result = subprocess.run(
        ["bash", str(CLIENTS), kind, gateway.address, str(out)], capture_output=True, text=True, timeout=900
    )
    assert result.returncode == 0, result.stdout[-3000:] + result.stderr[-3000:]


def test_typescript_client_compiles_strictly_and_runs_the_teacher_flow(
    city_gateway: Gateway, teacher: dict[str, str], tmp_path: Path
) -> None:
    generate("typescript", city_gateway, tmp_path)  # fails unless tsc --strict accepts teacher-flow.ts
    env = {
        **os.environ,
        "GATEWAY_URL": city_gateway.address,
        "TEACHER_TOKEN": teacher["token"],
        "CAMPAIGN_ID": teacher["campaign_id"],
        "VISITED_ON": TODAY.isoformat(),
    }
    run = subprocess.run(
        ["node", str(tmp_path / "dist" / "teacher-flow.js")], env=env, capture_output=True, text=True, timeout=120
    )
    assert run.returncode == 0, run.stderr[-3000:]
    out = json.loads(run.stdout)

    assert out["teacher_id"] == teacher["teacher_id"]
    assert out["visit_id"] and out["replayed_visit_id"] == out["visit_id"], "the same Idempotency-Key, one visit"
    assert out["read_back"] == {"visit_id": out["visit_id"], "assignment_id": out["assignment_id"], "status": "missed"}
    assert out["invalid"]["http"] == out["invalid"]["status"] == 422
    assert "/checklist" in out["invalid"]["pointers"]
    assert out["not_found"]["http"] == out["not_found"]["status"] == 404 and out["not_found"]["title"]
    assert_the_bureau_sees_it(city_gateway, out["assignment_id"], out["visit_id"])


def test_python_client_is_typed_without_any_and_runs_the_teacher_flow(
    city_gateway: Gateway, teacher: dict[str, str], tmp_path: Path
) -> None:
    generate("python", city_gateway, tmp_path)
    flow = ROOT / "clients" / "python" / "teacher_flow.py"
    # Every expression of the flow has a precise type from the generated package: no Any anywhere.
    mypy = subprocess.run(
        [sys.executable, "-m", "mypy", "--strict", "--disallow-any-expr", "--follow-imports=silent",
         "--no-incremental", "--cache-dir=/dev/null", str(flow)],
        env={**os.environ, "MYPYPATH": str(tmp_path)}, cwd=tmp_path, capture_output=True, text=True, timeout=600,
    )  # fmt: skip
    assert mypy.returncode == 0, mypy.stdout[-3000:]

    sys.path.insert(0, str(tmp_path))
    try:
        assert_operations_typed(["record_visit", "get_visit", "list_assignments"])
        spec = importlib.util.spec_from_file_location("teacher_flow", flow)
        assert spec is not None and spec.loader is not None
        module = importlib.util.module_from_spec(spec)
        sys.modules["teacher_flow"] = module  # its dataclasses resolve their annotations there
        spec.loader.exec_module(module)
        out = module.run(city_gateway.address, teacher["token"], teacher["campaign_id"], TODAY)
    finally:
        sys.path.remove(str(tmp_path))
        for name in [m for m in sys.modules if m.startswith("hss_") or m == "teacher_flow"]:
            del sys.modules[name]

    assert out.visit_id and out.replayed_visit_id == out.visit_id, "the same Idempotency-Key, one visit"
    assert out.read_back == (out.visit_id, out.assignment_id, "missed")
    assert (out.invalid.http, out.invalid.status) == (422, 422) and "/checklist" in out.invalid.pointers
    assert (out.not_found.http, out.not_found.status) == (404, 404) and out.not_found.title
    assert_the_bureau_sees_it(city_gateway, out.assignment_id, out.visit_id)


def assert_operations_typed(operations: list[str]) -> None:
    """Each operation's response type, and every model reachable from it, names no Any (attrs models keep unknown
    extra fields in `additional_properties`, the generator's fixed escape hatch, which the flow never reads)."""
    package = importlib.import_module("hss_visits_client")
    api = Path(package.__file__ or "").parent / "api"
    for operation in operations:
        (path,) = api.glob(f"*/{operation}.py")
        module = importlib.import_module(f"hss_visits_client.api.{path.parent.name}.{operation}")
        returned = typing.get_type_hints(module.sync_detailed)["return"]
        (parsed,) = typing.get_args(returned)
        assert not list(anys(parsed, set())), f"{operation}: {parsed}"
        names = {getattr(t, "__name__", "") for t in typing.get_args(parsed)}
        assert "Problem" in names and len(names) >= 2, f"{operation}: success and problem bodies, {names}"


def anys(tp: Any, seen: set[Any]) -> Iterator[str]:
    """Where `Any` occurs in a type, following attrs model classes' fields."""
    if tp is Any:
        yield "Any"
        return
    if tp in seen:
        return
    seen.add(tp)
    for arg in typing.get_args(tp):
        yield from anys(arg, seen)
    if isinstance(tp, type) and hasattr(tp, "__attrs_attrs__"):
        hints = typing.get_type_hints(tp, vars(sys.modules[tp.__module__]) | model_namespace(tp))
        for name, hint in hints.items():
            if name != "additional_properties":
                yield from (f"{tp.__name__}.{name}: {x}" for x in anys(hint, seen))


def model_namespace(tp: type) -> dict[str, Any]:
    """The generated models (their modules import each other only under TYPE_CHECKING)."""
    models = sys.modules[tp.__module__.rsplit(".", 1)[0]]
    return {n: v for n, v in vars(models).items() if isinstance(v, type | types.ModuleType)}


def assert_the_bureau_sees_it(gateway: Gateway, assignment_id: str, visit_id: str) -> None:
    """The visit is there for the bureau too, on that assignment."""
    with httpx.Client(base_url=gateway.address + "/api/v1", headers=BUREAU, timeout=60) as http:
        visit = http.get(f"/visits/{visit_id}").raise_for_status().json()
    assert visit["assignment_id"] == assignment_id and visit["status"] == "missed"
