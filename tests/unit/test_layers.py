"""The layers, as the imports say: the kit is the ground floor, no service imports another, tools sit on top."""

from __future__ import annotations

import ast
import graphlib
import re
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]
SERVICES = ("committees", "visits", "outreach", "reporting")


def imported(folder: Path) -> dict[str, set[str]]:
    """Every module under `folder` (relative path) and the top two levels of each module it imports."""
    found: dict[str, set[str]] = {}
    for path in sorted(folder.rglob("*.py")):
        names: set[str] = set()
        for node in ast.walk(ast.parse(path.read_text(), str(path))):
            if isinstance(node, ast.Import):
                names |= {alias.name for alias in node.names}
            elif isinstance(node, ast.ImportFrom) and node.module and node.level == 0:
                names.add(node.module)
        found[str(path.relative_to(ROOT))] = {".".join(n.split(".")[:2]) for n in names}
    return found


def test_the_kit_imports_no_service_and_no_tool():
    wrong = {
        f: sorted(n for n in names if n.split(".")[0] in {"services", "tools", "demo", "bench", "tests"})
        for f, names in imported(ROOT / "shared").items()
    }
    assert {f: n for f, n in wrong.items() if n} == {}


def test_no_service_imports_another():
    for service in SERVICES:
        others = {f"services.{s}" for s in SERVICES if s != service}
        wrong = {f: sorted(names & others) for f, names in imported(ROOT / "services" / service).items()}
        assert {f: n for f, n in wrong.items() if n} == {}, service


def kit_modules() -> dict[str, set[str]]:
    """Every kit module and the kit modules it imports, at the top or inside a function (`from shared import web`
    names the module shared.web)."""
    paths = {
        ".".join(p.relative_to(ROOT).with_suffix("").parts).removesuffix(".__init__"): p
        for p in sorted((ROOT / "shared").rglob("*.py"))
    }
    found: dict[str, set[str]] = {}
    for name, path in paths.items():
        names: set[str] = set()
        for node in ast.walk(ast.parse(path.read_text(), str(path))):
            if isinstance(node, ast.Import):
                names |= {alias.name for alias in node.names}
            elif isinstance(node, ast.ImportFrom) and node.module and node.level == 0:
                names |= {
                    f"{node.module}.{a.name}" if f"{node.module}.{a.name}" in paths else node.module for a in node.names
                }
        found[name] = {n for n in names if n in paths and n != name}
    return found


def test_the_kit_has_no_import_cycle():
    modules = kit_modules()
    assert "shared.web" in modules["shared.openapi"] or "shared.openapi" in modules["shared.web"]
    order = list(graphlib.TopologicalSorter(modules).static_order())  # CycleError names the circle
    assert set(order) == set(modules)


DB_CALLS = frozenset(
    {"fetch", "fetchrow", "fetchval", "execute", "executemany", "copy_records_to_table", "copy_to_table"}
)


def test_every_database_call_of_a_service_is_in_its_store():
    """Routers, use cases, the domain and the handlers reach the database through `store/` (and the kit): a call
    such as `conn.execute(...)` anywhere else is SQL outside the store."""
    outside = []
    for service in SERVICES:
        for path in sorted((ROOT / "services" / service).rglob("*.py")):
            if "store" in path.relative_to(ROOT / "services" / service).parts:
                continue
            for node in ast.walk(ast.parse(path.read_text(), str(path))):
                if isinstance(node, ast.Call) and isinstance(node.func, ast.Attribute) and node.func.attr in DB_CALLS:
                    outside.append(f"{path.relative_to(ROOT)}:{node.lineno} .{node.func.attr}(")
    assert outside == []


EVENT_TYPE = re.compile(r"^[a-z]+\.[a-z_]+(\.[a-z_]+)*\.v[0-9]+$")  # committees.staff.changed.v1
# Calls that make an id or read the time on their own: ids are `shared.ids.new_id(s)`, time is the injected clock
# (`shared.clock`); the database's now() stamps bookkeeping columns only.
OWN_IDS_OR_TIME = {
    "uuid": {"uuid1", "uuid4"},
    "secrets": {"token_hex", "token_urlsafe"},
    "datetime": {"now", "utcnow", "today"},
    "date": {"today"},
    "datetime.datetime": {"now", "utcnow", "today"},
    "datetime.date": {"today"},
}


def test_services_name_event_types_through_the_contracts_and_take_ids_and_time_from_the_kit():
    """No literal event type (a contract class's `.type` instead), no id or clock of a service's own."""
    found = []
    for service in SERVICES:
        for path in sorted((ROOT / "services" / service).rglob("*.py")):
            where = str(path.relative_to(ROOT))
            for node in ast.walk(ast.parse(path.read_text(), where)):
                if isinstance(node, ast.Constant) and isinstance(node.value, str) and EVENT_TYPE.match(node.value):
                    found.append(f"{where}:{node.lineno} {node.value!r}")
                elif isinstance(node, ast.Call) and isinstance(node.func, ast.Attribute):
                    if node.func.attr in OWN_IDS_OR_TIME.get(ast.unparse(node.func.value), ()):
                        found.append(f"{where}:{node.lineno} {ast.unparse(node.func)}()")
    assert found == []
