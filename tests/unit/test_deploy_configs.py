"""Checks deploy/: compose file, Prometheus config and rules, Grafana dashboard, Kubernetes manifests."""

import importlib.util
import json
import re
import shutil
import subprocess
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

import pytest
import yaml

ROOT = Path(__file__).resolve().parents[2]
DEPLOY = ROOT / "deploy"
PROMETHEUS_DIR = DEPLOY / "prometheus"
GRAFANA_DIR = DEPLOY / "grafana"
K8S_DIR = DEPLOY / "k8s"

SERVICE_PORTS = {"committees": 8101, "visits": 8102, "outreach": 8103, "reporting": 8104}
K8S_REPLICAS = {"committees": 2, "visits": 3, "outreach": 3, "reporting": 2}
# Their HorizontalPodAutoscaler owns the count (from K8S_REPLICAS up to the high-volume topics' 6 partitions).
K8S_AUTOSCALED = {"visits", "outreach"}

# The metric names every service shares (DESIGN §5), and reporting's business gauges.
KNOWN_METRICS = {
    "http_requests_total",
    "http_request_duration_seconds",
    "events_published_total",
    "events_consumed_total",
    "events_dead_lettered_total",
    "event_handler_duration_seconds",
    "kafka_consumer_lag_messages",
    "outbox_pending_events",
    "outbox_relay_leader",
    "outbox_oldest_age_seconds",
    "reporting_coverage_ratio",
    "reporting_cases_open",
    "reporting_cases_overdue",
    "reporting_referrals_unacknowledged_overdue",
    "reporting_figures_age_seconds",
    "committees_imports_total",
    "committees_import_rows_total",
    "committees_import_duration_seconds",
}
HISTOGRAMS = {"http_request_duration_seconds", "event_handler_duration_seconds", "committees_import_duration_seconds"}
# Overdue cases growing, referrals unacknowledged past deadline, reporting behind (dead letters: EventsDeadLettered).
BUSINESS_ALERTS = {
    "CareCasesOverdueGrowing",
    "ReferralsUnacknowledgedPastDeadline",
    "ReportingFiguresStale",
    "ReportingLagging",
}
# Series that Prometheus itself writes for every scrape target, not the services.
PROMETHEUS_SERIES = {"up"}

PROMTOOL = shutil.which("promtool")
needs_promtool = pytest.mark.skipif(
    PROMTOOL is None,
    reason="promtool not on PATH: install it with `apt-get install -y --no-install-recommends prometheus`",
)

_PROMQL_KEYWORDS = {"by", "without", "on", "ignoring", "group_left", "group_right", "bool", "and", "or"}
_PROMQL_KEYWORDS |= {"unless", "offset", "atan2", "inf", "nan"}
_LABEL_LIST = re.compile(r"\b(?:by|without|on|ignoring|group_left|group_right)\s*\([^)]*\)")
_IDENTIFIER = re.compile(r"(?<![\w.:])([a-zA-Z_:][a-zA-Z0-9_:]*)(\s*\()?")
_LABEL_VALUES = re.compile(r"label_values\(\s*(?:([a-zA-Z_:][\w:]*)\s*(?:\{[^}]*\})?\s*,)?\s*\w+\s*\)")


def metric_names(expr: str) -> set[str]:
    """Metric names a PromQL expression (Grafana variables allowed) selects, histogram suffixes removed."""
    text = re.sub(r'"(?:[^"\\]|\\.)*"', '""', expr)
    text = re.sub(r"'(?:[^'\\]|\\.)*'", "''", text)
    text = re.sub(r"\{[^}]*\}", " ", text)  # label matchers
    text = re.sub(r"\[[^\]]*\]", " ", text)  # range selectors and subqueries
    text = _LABEL_LIST.sub(" ", text)  # by (...), on (...), group_left (...)
    text = re.sub(r"\$\{?\w+(?::\w+)?\}?", " ", text)  # $service, ${__rate_interval}
    names: set[str] = set()
    for match in _IDENTIFIER.finditer(text):
        name, call = match.groups()
        if call or name.lower() in _PROMQL_KEYWORDS:
            continue  # a function or aggregation, or a keyword
        for suffix in ("_bucket", "_count", "_sum"):
            if name.endswith(suffix) and name.removesuffix(suffix) in HISTOGRAMS:
                name = name.removesuffix(suffix)
        names.add(name)
    return names


def load_yaml(path: Path) -> Any:
    return yaml.safe_load(path.read_text(encoding="utf-8"))


def env_of(service: dict[str, Any]) -> dict[str, str]:
    env = service.get("environment") or {}
    if isinstance(env, list):
        return dict(item.split("=", 1) for item in env)
    return {key: str(value) for key, value in env.items()}


def interpolated(value: str) -> str:
    """The value with compose's ${VAR...} references replaced, as `docker compose` would with VAR=x."""
    return re.sub(r"\$\{[^}]*\}", "x", value)


@pytest.fixture(scope="module")
def compose() -> dict[str, Any]:
    return load_yaml(ROOT / "docker-compose.yml")


@pytest.fixture(scope="module")
def dashboard() -> dict[str, Any]:
    return json.loads((GRAFANA_DIR / "dashboards" / "platform.json").read_text(encoding="utf-8"))


@pytest.fixture(scope="module")
def k8s_docs() -> list[tuple[Path, dict[str, Any]]]:
    docs = []
    for path in sorted(K8S_DIR.glob("*.yaml")):
        for doc in yaml.safe_load_all(path.read_text(encoding="utf-8")):
            if doc and doc.get("kind") != "Kustomization":  # kustomization.yaml is not a manifest
                docs.append((path, doc))
    return docs


def dashboard_exprs(dashboard: dict[str, Any]) -> list[str]:
    exprs = []
    for panel in dashboard["panels"]:
        for child in [panel, *panel.get("panels", [])]:
            exprs += [target["expr"] for target in child.get("targets", []) if target.get("expr")]
    return exprs


def alert_rules() -> list[dict[str, Any]]:
    return [rule for group in load_yaml(PROMETHEUS_DIR / "alerts.yml")["groups"] for rule in group["rules"]]


def run_promtool(*args: str) -> subprocess.CompletedProcess[str]:
    assert PROMTOOL is not None
    return subprocess.run(
        [PROMTOOL, *args], cwd=PROMETHEUS_DIR, capture_output=True, text=True, timeout=120, check=False
    )


# --- the PromQL metric-name extractor itself ------------------------------------------------------


@pytest.mark.parametrize(
    ("expr", "expected"),
    [
        ('sum by (service) (rate(http_requests_total{status=~"5.."}[5m]))', {"http_requests_total"}),
        (
            "histogram_quantile(0.95, sum by (le) (rate(http_request_duration_seconds_bucket[$__rate_interval])))",
            {"http_request_duration_seconds"},
        ),
        ("a_total unless a_total offset 10m > 1e3", {"a_total"}),
        ("sum(x) by (le) / on (service) group_left (district) y", {"x", "y"}),
    ],
)
def test_metric_name_extractor(expr: str, expected: set[str]) -> None:
    assert metric_names(expr) == expected


# --- promtool -------------------------------------------------------------------------------------


@needs_promtool
@pytest.mark.parametrize("config", ["prometheus.yml", "prometheus.local.yml"])
def test_promtool_check_config(config: str) -> None:
    result = run_promtool("check", "config", config)
    assert result.returncode == 0, result.stdout + result.stderr


@needs_promtool
def test_promtool_check_rules() -> None:
    result = run_promtool("check", "rules", "alerts.yml")
    assert result.returncode == 0, result.stdout + result.stderr


@needs_promtool
def test_promtool_test_rules() -> None:
    result = run_promtool("test", "rules", "alerts_test.yml")
    assert result.returncode == 0, result.stdout + result.stderr


@needs_promtool
def test_dashboard_queries_are_valid_promql(dashboard: dict[str, Any], tmp_path: Path) -> None:
    grafana_vars = {"$__rate_interval": "5m", "$__range": "1h", "$__interval": "1m"}
    rules = []
    for index, expr in enumerate(dashboard_exprs(dashboard)):
        for name, value in grafana_vars.items():
            expr = expr.replace(name, value)
        rules.append({"record": f"dashboard:query_{index}", "expr": re.sub(r"\$\w+", ".*", expr)})
    path = tmp_path / "dashboard_queries.yml"
    path.write_text(yaml.safe_dump({"groups": [{"name": "dashboard", "rules": rules}]}), encoding="utf-8")
    result = run_promtool("check", "rules", str(path))
    assert result.returncode == 0, result.stdout + result.stderr


# --- Prometheus config and rules, parsed -----------------------------------------------------------


@pytest.mark.parametrize(
    ("config", "host_of"),
    [("prometheus.yml", lambda name: name), ("prometheus.local.yml", lambda name: "127.0.0.1")],
)
def test_prometheus_scrapes_every_service(config: str, host_of: Any) -> None:
    parsed = load_yaml(PROMETHEUS_DIR / config)
    assert parsed["rule_files"] == ["alerts.yml"]
    jobs = {job["job_name"]: job for job in parsed["scrape_configs"]}
    for name, port in SERVICE_PORTS.items():
        targets = [target for static in jobs[name]["static_configs"] for target in static["targets"]]
        assert targets == [f"{host_of(name)}:{port}"]
        assert jobs[name].get("metrics_path", "/metrics") == "/metrics"
        # A `service` target label would clash with the metrics' own label.
        assert all("service" not in static.get("labels", {}) for static in jobs[name]["static_configs"])


def test_alert_rules_are_complete_and_use_known_metrics() -> None:
    rules = {rule["alert"]: rule for rule in alert_rules()}
    assert set(rules) >= {
        "OutboxBacklogStale",
        "OutboxStuck",
        "KafkaConsumerLagHigh",
        "EventsDeadLettered",
        "HttpServerErrorRateHigh",
        "ServiceDown",
        *BUSINESS_ALERTS,
    }
    for name, rule in rules.items():
        assert rule["labels"]["severity"] in {"critical", "warning", "info"}, name
        assert rule["annotations"]["summary"] and rule["annotations"]["description"], name
        assert metric_names(rule["expr"]) <= KNOWN_METRICS | PROMETHEUS_SERIES, name
    assert rules["ServiceDown"]["for"] == "1m"
    assert rules["OutboxBacklogStale"]["for"] == "5m"
    assert rules["HttpServerErrorRateHigh"]["for"] == "5m"
    assert "increase(events_dead_lettered_total[10m])" in rules["EventsDeadLettered"]["expr"]


def test_alert_unit_tests_cover_dead_letters_service_down_and_a_stuck_outbox() -> None:
    tests = load_yaml(PROMETHEUS_DIR / "alerts_test.yml")["tests"]
    tested = {case["alertname"] for test in tests for case in test["alert_rule_test"]}
    assert {"EventsDeadLettered", "ServiceDown", "OutboxStuck", *BUSINESS_ALERTS} <= tested


def test_known_metrics_are_defined_by_the_code() -> None:
    """Alerts and panels may only use metrics some service really exports (a prometheus_client definition)."""
    sources = "".join(
        path.read_text(encoding="utf-8") for path in [*ROOT.glob("shared/*.py"), *ROOT.glob("services/**/*.py")]
    )
    defined = set(re.findall(r"(?:Counter|Gauge|Histogram)\(\s*\"([a-z_:]+)\"", sources))
    assert defined >= KNOWN_METRICS, sorted(KNOWN_METRICS - defined)


# --- docker compose --------------------------------------------------------------------------------


def test_compose_has_the_whole_system(compose: dict[str, Any]) -> None:
    services = compose["services"]
    assert set(services) >= {*SERVICE_PORTS, "kafka", "postgres", "prometheus", "grafana"}
    assert services["kafka"]["image"] == "apache/kafka:4.1.1"
    assert services["postgres"]["image"] == "postgres:15.15"
    assert services["prometheus"]["image"].startswith("prom/prometheus")
    assert services["grafana"]["image"].startswith("grafana/grafana")


def test_compose_kafka_is_single_node_kraft_without_auto_topic_creation(compose: dict[str, Any]) -> None:
    env = env_of(compose["services"]["kafka"])
    assert env["KAFKA_AUTO_CREATE_TOPICS_ENABLE"] == "false"
    assert set(env["KAFKA_PROCESS_ROLES"].split(",")) == {"broker", "controller"}
    assert env["KAFKA_CONTROLLER_QUORUM_VOTERS"] == f"{env['KAFKA_NODE_ID']}@kafka:9093"
    assert "CONTROLLER://:9093" in env["KAFKA_LISTENERS"]
    assert env["KAFKA_CONTROLLER_LISTENER_NAMES"] == "CONTROLLER"
    assert len(env["CLUSTER_ID"]) == 22  # base64url of 16 bytes
    factors = {key: value for key, value in env.items() if key.endswith("REPLICATION_FACTOR")}
    assert "KAFKA_OFFSETS_TOPIC_REPLICATION_FACTOR" in factors
    assert set(factors.values()) == {"1"}
    advertised = env["KAFKA_ADVERTISED_LISTENERS"].split(",")
    for name in SERVICE_PORTS:
        bootstrap = env_of(compose["services"][name])["KAFKA_BOOTSTRAP_SERVERS"]
        assert f"PLAINTEXT://{bootstrap}" in advertised


def test_compose_postgres_creates_one_database_per_service(compose: dict[str, Any]) -> None:
    postgres = compose["services"]["postgres"]
    mounts = [volume.split(":") for volume in postgres["volumes"]]
    assert any(
        src == "./deploy/postgres/init.sql" and dst.startswith("/docker-entrypoint-initdb.d/")
        for src, dst, *_ in mounts
    )
    init_sql = (DEPLOY / "postgres" / "init.sql").read_text(encoding="utf-8")
    created = set(re.findall(r"CREATE DATABASE (\w+);", init_sql))
    assert created == set(SERVICE_PORTS)


@pytest.mark.parametrize(("name", "port"), sorted(SERVICE_PORTS.items()))
def test_compose_service(compose: dict[str, Any], name: str, port: int) -> None:
    service = compose["services"][name]
    assert service["build"]["context"] == "."
    assert service["command"] == ["python", "-m", f"services.{name}"]
    env = env_of(service)
    url = urlsplit(interpolated(env["DATABASE_URL"]))
    assert url.scheme in {"postgresql", "postgres"}
    assert url.hostname == "postgres"
    assert url.path == f"/{name}", "each service has its own database"
    assert env["KAFKA_BOOTSTRAP_SERVERS"] == "kafka:9092"
    for var in ("HSS_JWT_ISSUER", "HSS_JWT_JWKS_URL"):  # production: the identity provider's tokens only
        assert env[var].startswith("${" + var + ":?"), "the identity provider comes from the environment"
    assert "HSS_JWT_SECRET" not in env, "no dev-token secret in production"
    assert "HSS_ENV" in env
    assert "ports" not in service, "frontends call the gateway; the services are not published"
    assert f"127.0.0.1:{port}/readyz" in " ".join(service["healthcheck"]["test"])
    for dependency in ("kafka", "postgres"):
        assert service["depends_on"][dependency]["condition"] == "service_healthy"


def test_compose_migrates_as_the_owner_and_serves_as_each_services_role(compose: dict[str, Any]) -> None:
    migrate = compose["services"]["migrate"]
    assert migrate["restart"] == "no"
    script = " ".join(migrate["command"])
    assert all(f"python -m services.{name} migrate" in script for name in SERVICE_PORTS)
    env = env_of(migrate)
    owner = compose["services"]["postgres"]["environment"]["POSTGRES_USER"]
    for name in SERVICE_PORTS:
        assert urlsplit(interpolated(env[f"{name.upper()}_DATABASE_URL"])).username == owner
        service = compose["services"][name]
        assert service["depends_on"]["migrate"]["condition"] == "service_completed_successfully"
        assert urlsplit(interpolated(env_of(service)["DATABASE_URL"])).username == f"{name}_svc"
        assert env_of(service)["HSS_DB_MIGRATE_AT_START"] == "false"
    mounts = [volume.split(":")[0] for volume in compose["services"]["postgres"]["volumes"]]
    assert "./deploy/postgres/roles.sh" in mounts
    roles = (DEPLOY / "postgres" / "roles.sh").read_text(encoding="utf-8")
    assert "IN ROLE hss_service" in roles


def test_compose_databases_are_distinct(compose: dict[str, Any]) -> None:
    urls = [env_of(compose["services"][name])["DATABASE_URL"] for name in SERVICE_PORTS]
    assert len({urlsplit(interpolated(url)).path for url in urls}) == len(SERVICE_PORTS)


def test_compose_monitoring_mounts(compose: dict[str, Any]) -> None:
    prometheus = compose["services"]["prometheus"]
    assert "./deploy/prometheus:/etc/prometheus:ro" in prometheus["volumes"]
    assert "--config.file=/etc/prometheus/prometheus.yml" in prometheus["command"]
    grafana_mounts = dict(volume.split(":")[:2] for volume in compose["services"]["grafana"]["volumes"])
    assert grafana_mounts["./deploy/grafana/provisioning"] == "/etc/grafana/provisioning"
    providers = load_yaml(GRAFANA_DIR / "provisioning" / "dashboards" / "hss.yml")["providers"]
    assert grafana_mounts["./deploy/grafana/dashboards"] == providers[0]["options"]["path"]


# --- image -----------------------------------------------------------------------------------------


def test_dockerfile_and_context() -> None:
    dockerfile = (ROOT / "Dockerfile").read_text(encoding="utf-8")
    bases = re.findall(r"^FROM (\S+)", dockerfile, re.MULTILINE)
    assert bases and all(re.fullmatch(r"python:3\.11\.\d+-slim-\w+(@sha256:[0-9a-f]{64})?", base) for base in bases)
    assert "pip install --no-deps --require-hashes -r requirements.runtime.txt" in dockerfile
    assert re.search(r"^USER (?!root|0\b)\S+", dockerfile, re.MULTILINE), "runs as a non-root user"
    assert "COPY shared/ shared/" in dockerfile and "COPY services/ services/" in dockerfile
    ignored = (ROOT / ".dockerignore").read_text(encoding="utf-8").split()
    assert {"!requirements.lock", "!shared/", "!services/", "!deploy/docker/runtime_requirements.py"} <= set(ignored)


def test_runtime_requirements_drop_only_dev_packages() -> None:
    spec = importlib.util.spec_from_file_location("runtime_requirements", DEPLOY / "docker" / "runtime_requirements.py")
    assert spec is not None and spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    lock = (ROOT / "requirements.lock").read_text(encoding="utf-8")
    kept = {line.split("==")[0] for line in module.runtime_packages(lock)}
    _, via = module.parse_lock(lock)
    direct = {name for name, parents in via.items() if module.PROJECT_RUNTIME in parents}
    assert direct and direct <= kept
    assert {"fastapi", "uvicorn", "asyncpg", "aiokafka"} <= kept
    assert not kept & {"pytest", "ruff", "mypy", "pytest-asyncio", "types-pyyaml"}


# --- Grafana ---------------------------------------------------------------------------------------


def test_dashboard_uses_only_known_metrics(dashboard: dict[str, Any]) -> None:
    used: set[str] = set()
    for expr in dashboard_exprs(dashboard):
        names = metric_names(expr)
        assert names, f"no metric found in {expr!r}"
        assert names <= KNOWN_METRICS | PROMETHEUS_SERIES, f"unknown metric in {expr!r}"
        used |= names
    for variable in dashboard["templating"]["list"]:
        query = variable["query"]["query"] if isinstance(variable["query"], dict) else variable["query"]
        match = _LABEL_VALUES.fullmatch(query.strip())
        assert match, f"unexpected variable query {query!r}"
        assert match.group(1) in KNOWN_METRICS
    assert used >= KNOWN_METRICS, f"metrics without a panel: {sorted(KNOWN_METRICS - used)}"


def test_dashboard_panels_use_the_provisioned_datasource(dashboard: dict[str, Any]) -> None:
    datasources = load_yaml(GRAFANA_DIR / "provisioning" / "datasources" / "prometheus.yml")["datasources"]
    uid = datasources[0]["uid"]
    assert datasources[0]["url"] == "http://prometheus:9090"
    panels = [panel for panel in dashboard["panels"] if panel["type"] != "row"]
    assert len({panel["id"] for panel in dashboard["panels"]}) == len(dashboard["panels"])
    for panel in panels:
        assert panel["datasource"]["uid"] == uid, panel["title"]
        assert panel["targets"], panel["title"]


# --- Kubernetes ------------------------------------------------------------------------------------


def test_k8s_deployments_have_probes_and_resources(k8s_docs: list[tuple[Path, dict[str, Any]]]) -> None:
    deployments = {doc["metadata"]["name"]: doc for _, doc in k8s_docs if doc["kind"] == "Deployment"}
    assert set(deployments) == {*SERVICE_PORTS, "gateway"}
    del deployments["gateway"]  # nginx: tests/unit/test_gateway_config.py
    for name, deployment in deployments.items():
        spec = deployment["spec"]
        if name in K8S_AUTOSCALED:
            assert "replicas" not in spec, "an applied replica count would fight the autoscaler"
        else:
            assert spec["replicas"] == K8S_REPLICAS[name]
        labels = spec["template"]["metadata"]["labels"]
        assert spec["selector"]["matchLabels"].items() <= labels.items()
        (container,) = spec["template"]["spec"]["containers"]
        assert container["command"] == ["python", "-m", f"services.{name}"]
        ports = {port["name"]: port["containerPort"] for port in container["ports"]}
        assert ports["http"] == SERVICE_PORTS[name]
        for probe, path in (("readinessProbe", "/readyz"), ("livenessProbe", "/healthz")):
            assert container[probe]["httpGet"]["path"] == path, f"{name} {probe}"
            assert container[probe]["httpGet"]["port"] in {"http", SERVICE_PORTS[name]}
        assert container["resources"]["requests"]["cpu"] and container["resources"]["limits"]["memory"]
        env = {item["name"]: item for item in container.get("env", [])}
        assert env["DATABASE_URL"]["valueFrom"]["secretKeyRef"]["key"] == f"{name.upper()}_DATABASE_URL"
        assert "HSS_JWT_SECRET" not in env, "production accepts the identity provider's tokens only"
        assert {"configMapRef": {"name": "hss-config"}} in container["envFrom"]


def test_k8s_migrations_run_in_an_init_container_before_the_service(
    k8s_docs: list[tuple[Path, dict[str, Any]]],
) -> None:
    deployments = {
        doc["metadata"]["name"]: doc
        for _, doc in k8s_docs
        if doc["kind"] == "Deployment" and doc["metadata"]["name"] in SERVICE_PORTS
    }
    for name, deployment in deployments.items():
        pod = deployment["spec"]["template"]["spec"]
        (init,) = pod["initContainers"]
        (container,) = pod["containers"]
        assert init["command"] == ["python", "-m", f"services.{name}", "migrate"]
        assert init["image"] == container["image"]
        assert init["envFrom"] == container["envFrom"], "same config"
        init_env = {item["name"]: item for item in init["env"]}
        env = {item["name"]: item for item in container["env"]}
        assert init_env.keys() == env.keys()
        # The same database, as its owner for the migrations and as the service's role (no DDL) for serving.
        assert init_env["DATABASE_URL"]["valueFrom"]["secretKeyRef"]["key"] == f"{name.upper()}_MIGRATION_DATABASE_URL"
        assert env["DATABASE_URL"]["valueFrom"]["secretKeyRef"]["key"] == f"{name.upper()}_DATABASE_URL"
        assert init["securityContext"] == container["securityContext"]
        assert "startupProbe" not in init, "a long migration must not count against a probe"


def test_kafka_durability_is_declared_for_production_and_compose(
    k8s_docs: list[tuple[Path, dict[str, Any]]], compose: dict[str, Any]
) -> None:
    (config,) = [
        doc["data"] for _, doc in k8s_docs if doc["kind"] == "ConfigMap" and doc["metadata"]["name"] == "hss-config"
    ]
    assert config["KAFKA_TOPIC_REPLICATION_FACTOR"] == "3"
    assert config["KAFKA_TOPIC_MIN_INSYNC_REPLICAS"] == "2"
    for name in SERVICE_PORTS:
        env = env_of(compose["services"][name])
        assert env["KAFKA_TOPIC_REPLICATION_FACTOR"] == env["KAFKA_TOPIC_MIN_INSYNC_REPLICAS"] == "1"  # one broker


def test_k8s_services_and_budgets_select_the_deployments(k8s_docs: list[tuple[Path, dict[str, Any]]]) -> None:
    by_kind: dict[str, dict[str, dict[str, Any]]] = {}
    for _, doc in k8s_docs:
        by_kind.setdefault(doc["kind"], {})[doc["metadata"]["name"]] = doc
    assert "hss-config" in by_kind["ConfigMap"]
    for name, port in SERVICE_PORTS.items():
        pod_labels = by_kind["Deployment"][name]["spec"]["template"]["metadata"]["labels"]
        service = by_kind["Service"][name]["spec"]
        assert service["selector"].items() <= pod_labels.items()
        assert service["ports"][0]["port"] == port
        budget = by_kind["PodDisruptionBudget"][name]["spec"]
        assert budget["selector"]["matchLabels"].items() <= pod_labels.items()
        assert "maxUnavailable" in budget or "minAvailable" in budget


def test_k8s_secret_is_a_template(k8s_docs: list[tuple[Path, dict[str, Any]]]) -> None:
    secrets = [(path, doc) for path, doc in k8s_docs if doc["kind"] == "Secret"]
    assert [path.name for path, _ in secrets] == ["secret.template.yaml"]
    (_, secret) = secrets[0]
    assert all("CHANGE_ME" in value for value in secret["stringData"].values())
    urls = {f"{name.upper()}_{kind}DATABASE_URL" for name in SERVICE_PORTS for kind in ("", "MIGRATION_")}
    assert urls <= set(secret["stringData"])
    kustomization = load_yaml(K8S_DIR / "kustomization.yaml")
    assert "secret.template.yaml" not in kustomization["resources"]
    assert all((K8S_DIR / resource).is_file() for resource in kustomization["resources"])


@pytest.mark.skipif(shutil.which("kubectl") is None, reason="kubectl not on PATH")
def test_k8s_kustomization_renders() -> None:
    result = subprocess.run(
        ["kubectl", "kustomize", str(K8S_DIR)], capture_output=True, text=True, timeout=60, check=False
    )
    assert result.returncode == 0, result.stderr
    kinds = [doc["kind"] for doc in yaml.safe_load_all(result.stdout) if doc]
    assert kinds.count("Deployment") == len(SERVICE_PORTS) + 1  # and the gateway
    assert kinds.count("Ingress") == 1


# --- issue 14: hashes, pinned images, host bindings, autoscaling, network policy, pod security -------------------


def test_locks_pin_every_package_by_hash() -> None:
    for lock in ("requirements.lock", "scripts/uv.lock.txt"):
        text = (ROOT / lock).read_text(encoding="utf-8")
        requirements = re.findall(r"^(\S+==\S+)(?: \\\n(?:\s+--hash=sha256:[0-9a-f]{64}(?: \\)?\n)+)?", text, re.M)
        hashed = re.findall(r"^(\S+==\S+) \\\n\s+--hash=sha256:[0-9a-f]{64}", text, re.M)
        assert requirements and requirements == hashed, f"{lock}: every requirement needs its --hash lines"
    bootstrap = (ROOT / "scripts" / "bootstrap.sh").read_text(encoding="utf-8")
    assert "uv pip sync -q --require-hashes" in bootstrap
    assert "--require-hashes -r scripts/uv.lock.txt" in bootstrap


def test_runtime_requirements_keep_their_hashes() -> None:
    spec = importlib.util.spec_from_file_location("runtime_requirements", DEPLOY / "docker" / "runtime_requirements.py")
    assert spec is not None and spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    for requirement in module.runtime_packages((ROOT / "requirements.lock").read_text(encoding="utf-8")):
        first, *hashes = requirement.split("\n")
        assert first.endswith(" \\") and hashes, first
        assert all(re.fullmatch(r"\s+--hash=sha256:[0-9a-f]{64}( \\)?", line) for line in hashes), first
        assert not hashes[-1].endswith("\\"), first


def test_compose_images_are_pinned_to_a_release(compose: dict[str, Any]) -> None:
    for name, service in compose["services"].items():
        if "image" in service and "build" not in service:
            tag = service["image"].rsplit(":", 1)[-1]
            assert re.fullmatch(r"v?\d+\.\d+(\.\d+)?(@sha256:[0-9a-f]{64})?", tag), f"{name}: {service['image']}"


def test_compose_publishes_only_the_gateway_and_grafana_to_the_network(compose: dict[str, Any]) -> None:
    public = {}
    for name, service in compose["services"].items():
        for port in service.get("ports", []):
            if not str(port).startswith("127.0.0.1:"):
                public[name] = port
    assert set(public) == {"gateway", "grafana"}, public
    assert public["gateway"].endswith(":8443"), "the gateway is published with TLS only"
    assert compose["services"]["kafka"]["ports"] == ["127.0.0.1:29092:29092"]
    assert compose["services"]["prometheus"]["ports"] == ["127.0.0.1:9090:9090"]


def test_compose_and_k8s_give_reporting_the_owners_urls(
    compose: dict[str, Any], k8s_docs: list[tuple[Path, dict[str, Any]]]
) -> None:
    from services.reporting.settings import ReportingSettings

    wanted = {f"REPORTING_{name.upper()}_URL" for name in SERVICE_PORTS if name != "reporting"}
    settings_fields = {
        f"REPORTING_{field.upper()}" for field in ReportingSettings.model_fields if field.endswith("_url")
    }
    assert wanted <= settings_fields
    (config,) = [
        doc["data"] for _, doc in k8s_docs if doc["kind"] == "ConfigMap" and doc["metadata"]["name"] == "hss-config"
    ]
    env = env_of(compose["services"]["reporting"])
    for key in wanted:
        owner = key.removeprefix("REPORTING_").removesuffix("_URL").lower()
        assert env[key] == config[key] == f"http://{owner}:{SERVICE_PORTS[owner]}"


def test_k8s_pods_meet_the_restricted_pod_security_profile(k8s_docs: list[tuple[Path, dict[str, Any]]]) -> None:
    (namespace,) = [doc for _, doc in k8s_docs if doc["kind"] == "Namespace"]
    labels = namespace["metadata"]["labels"]
    for mode in ("enforce", "warn", "audit"):
        assert labels[f"pod-security.kubernetes.io/{mode}"] == "restricted"
    for _, doc in k8s_docs:
        if doc["kind"] != "Deployment":
            continue
        pod = doc["spec"]["template"]["spec"]
        assert pod["automountServiceAccountToken"] is False
        assert pod["securityContext"]["runAsNonRoot"] is True
        assert pod["securityContext"]["seccompProfile"]["type"] == "RuntimeDefault"
        for container in pod["containers"] + pod.get("initContainers", []):
            context = container["securityContext"]
            assert context["allowPrivilegeEscalation"] is False and context["capabilities"]["drop"] == ["ALL"]


def test_k8s_autoscales_visits_and_outreach_on_cpu_and_consumer_lag(
    k8s_docs: list[tuple[Path, dict[str, Any]]],
) -> None:
    autoscalers = {
        doc["metadata"]["name"]: doc["spec"] for _, doc in k8s_docs if doc["kind"] == "HorizontalPodAutoscaler"
    }
    assert set(autoscalers) == K8S_AUTOSCALED
    adapter = load_yaml(PROMETHEUS_DIR / "adapter-rules.yaml")["external"]
    served = {rule["name"]["as"]: rule for rule in adapter}
    for name, spec in autoscalers.items():
        assert spec["scaleTargetRef"] == {"apiVersion": "apps/v1", "kind": "Deployment", "name": name}
        assert spec["minReplicas"] == K8S_REPLICAS[name] and spec["maxReplicas"] == 6
        metrics = {metric["type"]: metric for metric in spec["metrics"]}
        assert metrics["Resource"]["resource"]["name"] == "cpu"
        external = metrics["External"]["external"]
        assert external["metric"]["selector"]["matchLabels"] == {"service": name}
        rule = served[external["metric"]["name"]]
        assert metric_names(rule["seriesQuery"]) == {"kafka_consumer_lag_messages"} <= KNOWN_METRICS
        assert "sum by (service)" in rule["metricsQuery"]


def test_k8s_network_policy_denies_by_default_and_allows_what_is_needed(
    k8s_docs: list[tuple[Path, dict[str, Any]]],
) -> None:
    policies = {doc["metadata"]["name"]: doc["spec"] for _, doc in k8s_docs if doc["kind"] == "NetworkPolicy"}
    deny = policies["default-deny"]
    assert deny["podSelector"] == {} and set(deny["policyTypes"]) == {"Ingress", "Egress"}
    assert "ingress" not in deny and "egress" not in deny
    egress_ports = {
        (port.get("protocol", "TCP"), port["port"])
        for spec in policies.values()
        for rule in spec.get("egress", [])
        for port in rule.get("ports", [])
    }
    assert {("UDP", 53), ("TCP", 5432), ("TCP", 9092), ("TCP", "http")} <= egress_ports
    sources = [peer for spec in policies.values() for rule in spec.get("ingress", []) for peer in rule.get("from", [])]
    namespaces = {
        peer["namespaceSelector"]["matchLabels"]["kubernetes.io/metadata.name"]
        for peer in sources
        if "namespaceSelector" in peer
    }
    assert namespaces == {"monitoring", "ingress"}
    assert {"podSelector": {"matchLabels": {"app.kubernetes.io/name": "reporting"}}} in sources


def run_deploy_check(*args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        ["bash", str(ROOT / "scripts" / "deploy-check.sh"), *args],
        capture_output=True,
        text=True,
        timeout=900,
        check=False,
    )


@pytest.mark.timeout(900)  # the first run builds the Go tools
def test_kubeconform_accepts_the_rendered_kustomization_and_rejects_a_broken_one(tmp_path: Path) -> None:
    result = run_deploy_check("k8s")
    assert result.returncode == 0, result.stdout + result.stderr
    assert re.search(r"Valid: (\d+), Invalid: 0, Errors: 0, Skipped: 0", result.stdout)
    broken = tmp_path / "k8s"
    shutil.copytree(K8S_DIR, broken)
    hpa = broken / "hpa.yaml"
    hpa.write_text(hpa.read_text(encoding="utf-8").replace("averageUtilization", "averageUtilisation"), "utf-8")
    result = run_deploy_check("k8s", str(broken))
    assert result.returncode != 0 and "HorizontalPodAutoscaler visits is invalid" in result.stdout


@pytest.mark.timeout(900)  # the first run builds the Go tools
def test_compose_spec_accepts_docker_compose_yml_and_rejects_a_broken_one(tmp_path: Path) -> None:
    result = run_deploy_check("compose")
    assert result.returncode == 0, result.stdout + result.stderr
    broken = tmp_path / "docker-compose.yml"
    text = (ROOT / "docker-compose.yml").read_text(encoding="utf-8")
    broken.write_text(text.replace("    hostname: kafka\n", "    hostnam: kafka\n", 1), encoding="utf-8")
    result = run_deploy_check("compose", str(broken))
    assert result.returncode != 0 and "services.kafka" in result.stderr


def test_compose_and_k8s_send_traces_over_otlp(
    compose: dict[str, Any], k8s_docs: list[tuple[Path, dict[str, Any]]]
) -> None:
    jaeger = compose["services"]["jaeger"]
    assert "--set=receivers.otlp.protocols.http.endpoint=0.0.0.0:4318" in jaeger["command"]
    assert jaeger["ports"] == ["127.0.0.1:16686:16686"]  # the UI, on the host's loopback only
    for name in SERVICE_PORTS:
        assert env_of(compose["services"][name])["OTEL_EXPORTER_OTLP_ENDPOINT"] == "http://jaeger:4318"
    (config,) = [
        doc["data"] for _, doc in k8s_docs if doc["kind"] == "ConfigMap" and doc["metadata"]["name"] == "hss-config"
    ]
    endpoint = urlsplit(config["OTEL_EXPORTER_OTLP_ENDPOINT"])
    assert endpoint.scheme == "http" and endpoint.port == 4318
    policies = [doc["spec"] for _, doc in k8s_docs if doc["kind"] == "NetworkPolicy"]
    allowed = [
        rule
        for spec in policies
        if spec["podSelector"] == {"matchLabels": {"app.kubernetes.io/part-of": "hss"}}
        for rule in spec.get("egress", [])
        if {"protocol": "TCP", "port": 4318} in rule.get("ports", [])
    ]
    assert allowed, "the services may reach the collector"
