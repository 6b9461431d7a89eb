"""The documents under docs/ that are generated from the code, written or checked in one go.

* `docs/schemas/<type>.json`, one per published event type, and `docs/asyncapi.yaml` (the contracts,
  `shared/contracts/documents.py`, with every service's consumer groups);
* `docs/openapi/<service>.json` (each service's routes, told by `shared/openapi.py`).

`python -m tools.docs` writes them; `python -m tools.docs --check` fails when one is stale, and both refuse a breaking
change to a published `.vN` event type. This lives outside `shared/` because it imports the four services: the kit
is the ground floor and imports none of them.
"""

from __future__ import annotations

import argparse
import difflib
import json
import sys
from pathlib import Path

import yaml
from fastapi import FastAPI

from services.committees.app import build_spec as committees_spec
from services.committees.app import create as committees_app
from services.committees.settings import Settings as CommitteesSettings
from services.outreach.app import build_spec as outreach_spec
from services.outreach.app import create as outreach_app
from services.outreach.settings import OutreachSettings
from services.reporting.app import build_spec as reporting_spec
from services.reporting.app import create as reporting_app
from services.reporting.settings import ReportingSettings
from services.visits.app import build_spec as visits_spec
from services.visits.app import create as visits_app
from services.visits.settings import VisitsSettings
from shared.contracts import documents
from shared.contracts.compat import breaking_changes
from shared.inbox import subscribed_types

ROOT = Path(__file__).resolve().parents[1]
SCHEMAS = ROOT / "docs" / "schemas"
ASYNCAPI = ROOT / "docs" / "asyncapi.yaml"
OPENAPI = ROOT / "docs" / "openapi"


def consumer_groups() -> dict[str, tuple[str, set[str]]]:
    """Each consumer group of the four services: the service and the event types it applies."""
    specs = [
        committees_spec(CommitteesSettings(env="dev")),
        visits_spec(VisitsSettings(env="dev")),
        outreach_spec(OutreachSettings(env="dev")),
        reporting_spec(ReportingSettings(env="dev")),
    ]
    groups: dict[str, tuple[str, set[str]]] = {}
    for spec in specs:
        for group, handlers in spec.consumers.items():
            groups[group] = (spec.settings.service_name, set(subscribed_types(handlers)))
    return groups


def apps() -> dict[str, FastAPI]:
    """Each service's app, built with default settings (nothing is started)."""
    return {
        "committees": committees_app(),
        "outreach": outreach_app(),
        "reporting": reporting_app(),
        "visits": visits_app(),
    }


def render_all() -> dict[Path, str]:
    """Every generated file and its content."""
    files = {
        SCHEMAS / f"{spec.type}.json": json.dumps(documents.schema_of(spec), indent=2, ensure_ascii=False) + "\n"
        for spec in documents.published()
    }
    files[ASYNCAPI] = yaml.safe_dump(
        documents.asyncapi(consumer_groups()), sort_keys=False, allow_unicode=True, width=120
    )
    for name, app in apps().items():
        files[OPENAPI / f"{name}.json"] = json.dumps(app.openapi(), indent=2, ensure_ascii=False) + "\n"
    return files


def incompatible() -> list[str]:
    """Breaking changes of the current contracts against the committed (published) schemas."""
    found = []
    for spec in documents.published():
        path = SCHEMAS / f"{spec.type}.json"
        if path.exists():
            old = json.loads(path.read_text())
            found += [f"{spec.type}{p}" for p in breaking_changes(old, documents.schema_of(spec))]
    return found


def stale() -> list[Path]:
    """The generated files whose committed copy differs from the code's (a short diff of each on stderr)."""
    found = []
    for path, text in render_all().items():
        old = path.read_text() if path.exists() else ""
        if old != text:
            found.append(path)
            diff = difflib.unified_diff(old.splitlines(), text.splitlines(), str(path), "generated", lineterm="", n=1)
            print("\n".join(list(diff)[:40]), file=sys.stderr)
    return found


def main() -> None:
    """Write the files, or with --check fail when a committed file is stale; never a breaking change."""
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--check", action="store_true", help="exit 1 if a committed file differs from the generated one")
    args = ap.parse_args()
    broken = incompatible()
    if broken:
        raise SystemExit("breaking change to a published event type; publish a new .vN instead:\n" + "\n".join(broken))
    if args.check:
        old = [str(p.relative_to(ROOT)) for p in stale()]
        if old:
            raise SystemExit("stale generated documents (run python -m tools.docs): " + ", ".join(old))
        return
    for path, text in render_all().items():
        if not path.exists() or path.read_text() != text:
            path.parent.mkdir(parents=True, exist_ok=True)
            path.write_text(text)
            print(f"wrote {path.relative_to(ROOT)}")


if __name__ == "__main__":
    main()
