"""A real Prometheus server (the Debian package) scraping a city run, with the project's alert rules loaded."""

from __future__ import annotations

import json
import re
import subprocess
import time
import urllib.parse
import urllib.request
from pathlib import Path
from typing import Any

import yaml

from shared.devstack.component import wait_until
from shared.testing.fixtures import free_port
from tests.e2e.city import CityRun

RULES = Path(__file__).resolve().parents[2] / "deploy" / "prometheus" / "alerts.yml"


def quick_rules(text: str, alert: str, hold: str = "2s", window: str = "8s") -> dict[str, Any]:
    """The production rule `alert` on a drill's time scale: its `for` becomes `hold` and the range windows of its
    expression (e.g. `[5m]`) become `window`; thresholds, labels and the expression are otherwise production's."""
    doc = yaml.safe_load(text)
    for group in doc["groups"]:
        group["rules"] = [r for r in group["rules"] if r.get("alert") == alert]
        for rule in group["rules"]:
            rule["for"] = hold
            rule["expr"] = re.sub(r"\[[0-9]+[smhd]\]", f"[{window}]", rule["expr"])
    doc["groups"] = [g for g in doc["groups"] if g["rules"]]
    assert doc["groups"], f"no alert {alert} in {RULES}"
    return dict(doc)


class Prometheus:
    """`prometheus` scraping every replica of a run each second and evaluating the rules each second."""

    def __init__(self, home: Path, run: CityRun, rules: dict[str, Any]) -> None:
        self.home = home / "prometheus"
        self.home.mkdir(parents=True, exist_ok=True)
        self.port = free_port()
        (self.home / "rules.yml").write_text(yaml.safe_dump(rules))
        config = {
            "global": {"scrape_interval": "1s", "scrape_timeout": "900ms", "evaluation_interval": "1s"},
            "rule_files": [str(self.home / "rules.yml")],
            "scrape_configs": [
                {
                    "job_name": name,
                    "static_configs": [{"targets": [p.address.removeprefix("http://") for p in procs]}],
                }
                for name, procs in run.procs.items()
            ],
        }
        (self.home / "prometheus.yml").write_text(yaml.safe_dump(config))
        self.proc: subprocess.Popen[bytes] | None = None

    def start(self) -> None:
        with open(self.home / "prometheus.log", "ab") as log:
            self.proc = subprocess.Popen(
                [
                    "prometheus",
                    f"--config.file={self.home / 'prometheus.yml'}",
                    f"--storage.tsdb.path={self.home / 'data'}",
                    f"--web.listen-address=127.0.0.1:{self.port}",
                ],
                stdin=subprocess.DEVNULL,
                stdout=log,
                stderr=subprocess.STDOUT,
            )
        proc = self.proc
        wait_until(lambda: self._get("/-/ready") is not None, 60, "prometheus", lambda: proc.poll() is None)

    def stop(self) -> None:
        if self.proc is not None and self.proc.poll() is None:
            self.proc.terminate()
            try:
                self.proc.wait(20)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait()

    def _get(self, path: str) -> Any:
        try:
            with urllib.request.urlopen(f"http://127.0.0.1:{self.port}{path}", timeout=5) as resp:
                body = resp.read()
                return json.loads(body) if path.startswith("/api/") else body
        except OSError:
            return None

    def alerts(self, name: str) -> list[dict[str, Any]]:
        """The alert's instances Prometheus has right now (state `pending` or `firing`), from its HTTP API."""
        doc = self._get("/api/v1/alerts") or {"data": {"alerts": []}}
        return [a for a in doc["data"]["alerts"] if a["labels"].get("alertname") == name]

    def firing(self, name: str, **labels: str) -> bool:
        return any(
            a["state"] == "firing" and all(a["labels"].get(k) == v for k, v in labels.items())
            for a in self.alerts(name)
        )

    def value(self, expr: str) -> float | None:
        """The instant value of a query that gives one sample (None when it gives none)."""
        doc = self._get("/api/v1/query?query=" + urllib.parse.quote(expr))
        result = (doc or {}).get("data", {}).get("result", [])
        return float(result[0]["value"][1]) if result else None


def wait_for_alert(prom: Prometheus, name: str, firing: bool, timeout: float = 120, **labels: str) -> float:
    """Seconds until the alert is (or is no longer) firing."""
    started = time.monotonic()
    while prom.firing(name, **labels) != firing:
        if time.monotonic() - started > timeout:
            raise AssertionError(f"alert {name} {labels} did not {'fire' if firing else 'resolve'} in {timeout}s")
        time.sleep(0.5)
    return time.monotonic() - started
