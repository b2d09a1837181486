"""deploy/ checked offline: renders, validates against Kubernetes and CRD schemas, passes checkov,
and agrees with the code (topic registry, settings, policy, metrics, web views).

The tools come from ``.ci/install-deploy-tools``; a test skips, naming the tool, only when
that tool is missing.
"""

from __future__ import annotations

import copy
import json
import os
import re
import shutil
import subprocess
from dataclasses import fields
from pathlib import Path

import pytest

yaml = pytest.importorskip("yaml", reason="PyYAML missing: run .ci/install-deploy-tools")
jsonschema = pytest.importorskip("jsonschema", reason="jsonschema missing: run "
                                 ".ci/install-deploy-tools")

from streams.topics import TOPICS  # noqa: E402
from streams.strimzi import manifests  # noqa: E402
from tradeguard.runtime.settings import Settings  # noqa: E402

pytestmark = pytest.mark.quick  # pure and fast: `python -m pytest -m quick`

ROOT = Path(__file__).resolve().parents[2]
DEPLOY = ROOT / "deploy"
TOOLS = Path(os.environ.get("TRADEGUARD_DEPLOY_TOOLS", "/tmp/tradeguard-deploy-tools"))
OVERLAYS = ("dev", "prod")
#: The Kubernetes version the core resources are validated against (kubernetes-validate).
KUBERNETES_VERSION = "1.33.0"
CORE_KINDS = {"ServiceAccount", "ConfigMap", "Service", "Deployment", "PodDisruptionBudget",
              "NetworkPolicy"}
CRD_SCHEMAS = {
    ("kafka.strimzi.io/v1", "KafkaTopic"): "kafka.strimzi.io_kafkatopics.v1.yaml",
    ("kafka.strimzi.io/v1", "KafkaUser"): "kafka.strimzi.io_kafkausers.v1.yaml",
    ("keda.sh/v1alpha1", "ScaledObject"): "keda.sh_scaledobjects.v1alpha1.yaml",
    ("keda.sh/v1alpha1", "TriggerAuthentication"): "keda.sh_triggerauthentications.v1alpha1.yaml",
    ("monitoring.coreos.com/v1", "ServiceMonitor"): "monitoring.coreos.com_servicemonitors.v1.yaml",
}


def tool(name: str) -> str:
    found = shutil.which(name) or (str(TOOLS / "bin" / name) if (TOOLS / "bin" / name).exists()
                                   else None)
    if found is None:
        pytest.skip(f"{name} is not installed: run .ci/install-deploy-tools")
    return found


def run(*cmd: str, **kw) -> subprocess.CompletedProcess:
    return subprocess.run(cmd, capture_output=True, text=True, timeout=300, **kw)


@pytest.fixture(scope="module", params=OVERLAYS)
def overlay(request, tmp_path_factory) -> tuple[str, list[dict], Path]:
    """(name, rendered documents, rendered file) for each overlay, via `kubectl kustomize`."""
    out = run(tool("kubectl"), "kustomize", str(DEPLOY / "overlays" / request.param))
    assert out.returncode == 0, out.stderr
    path = tmp_path_factory.mktemp(request.param) / "rendered.yaml"
    path.write_text(out.stdout)
    return request.param, [d for d in yaml.safe_load_all(out.stdout) if d], path


def of_kind(docs: list[dict], kind: str) -> list[dict]:
    return [d for d in docs if d["kind"] == kind]


def one(docs: list[dict], kind: str) -> dict:
    (doc,) = of_kind(docs, kind)
    return doc


def env_of(docs: list[dict]) -> dict[str, str]:
    (cm,) = [d for d in of_kind(docs, "ConfigMap") if d["metadata"]["name"].startswith(
        "tradeguard-env")]
    return cm["data"]


# -- rendering and validation -------------------------------------------------------------

def test_every_overlay_renders_the_whole_deployment(overlay):
    name, docs, _ = overlay
    kinds = {d["kind"] for d in docs}
    assert kinds >= {"Deployment", "Service", "ConfigMap", "PodDisruptionBudget", "NetworkPolicy",
                     "ServiceMonitor", "ScaledObject", "KafkaTopic", "ServiceAccount"}
    assert kinds <= CORE_KINDS | {k for _, k in CRD_SCHEMAS}, kinds
    kafka_side = ("KafkaTopic", "KafkaUser")  # in the Kafka cluster's namespace
    app_ns = {d["metadata"]["namespace"] for d in docs if d["kind"] not in kafka_side}
    assert app_ns == {"tradeguard-dev" if name == "dev" else "tradeguard"}
    assert {d["metadata"]["namespace"] for d in docs if d["kind"] in kafka_side} == {"kafka"}
    assert bool(of_kind(docs, "KafkaUser")) == (name == "prod")  # dev's Kafka has no auth


def test_core_resources_are_valid_for_the_named_kubernetes_version(overlay, tmp_path):
    _, docs, _ = overlay
    core = tmp_path / "core.yaml"
    core.write_text(yaml.safe_dump_all([d for d in docs if d["kind"] in CORE_KINDS]))
    out = run(tool("kubernetes-validate"), "--kubernetes-version", KUBERNETES_VERSION,
              "--strict", str(core))
    assert out.returncode == 0, out.stdout + out.stderr
    assert out.stdout.count(" passed for resource ") == sum(d["kind"] in CORE_KINDS for d in docs)


def _strict(schema: dict) -> dict:
    """The CRD schema, rejecting unknown fields where the CRD would silently prune them."""
    schema = copy.deepcopy(schema)

    def walk(node):
        if isinstance(node, dict):
            if ("properties" in node and "additionalProperties" not in node
                    and not node.get("x-kubernetes-preserve-unknown-fields")):
                node["additionalProperties"] = False
            for key, value in node.items():
                if key not in ("enum", "required"):
                    walk(value)
        elif isinstance(node, list):
            for item in node:
                walk(item)
    walk(schema)
    return schema


def crd_validator(api_version: str, kind: str):
    schema = yaml.safe_load((DEPLOY / "schemas" / CRD_SCHEMAS[(api_version, kind)]).read_text())
    return jsonschema.Draft7Validator(_strict(schema))


def test_custom_resources_match_their_projects_crd_schemas(overlay):
    _, docs, _ = overlay
    custom = [d for d in docs if d["kind"] not in CORE_KINDS]
    assert custom
    for doc in custom:
        errors = [f"{'/'.join(map(str, e.path))}: {e.message}"
                  for e in crd_validator(doc["apiVersion"], doc["kind"]).iter_errors(doc)]
        assert not errors, (doc["kind"], doc["metadata"]["name"], errors)


def test_topics_also_match_the_older_strimzi_v1beta2_schema(overlay):
    _, docs, _ = overlay
    schema = yaml.safe_load((DEPLOY / "schemas" / "kafka.strimzi.io_kafkatopics.v1beta2.yaml")
                            .read_text())
    validator = jsonschema.Draft7Validator(_strict(schema))
    for doc in of_kind(docs, "KafkaTopic"):
        assert not list(validator.iter_errors({**doc, "apiVersion": "kafka.strimzi.io/v1beta2"}))


def test_the_crd_check_rejects_a_misspelt_field():
    bad = {"apiVersion": "keda.sh/v1alpha1", "kind": "ScaledObject", "metadata": {"name": "x"},
           "spec": {"scaleTargetRef": {"name": "x"}, "maxReplicas": 4,
                    "triggers": [{"type": "kafka", "metadata": {"topic": "orders"}}]}}
    errors = list(crd_validator("keda.sh/v1alpha1", "ScaledObject").iter_errors(bad))
    assert any("maxReplicas" in e.message for e in errors)


def test_checkov_passes_on_the_manifests_and_the_image(overlay):
    _, _, rendered = overlay
    checkov = tool("checkov")
    for target, framework in ((rendered, "kubernetes"), (DEPLOY / "Dockerfile", "dockerfile")):
        out = run(checkov, "-f", str(target), "--framework", framework, "--compact",
                  "--skip-download", "--output", "json")
        report = json.loads(out.stdout)
        summary = report["summary"]
        failed = [(c["check_id"], c["resource"]) for c in report["results"]["failed_checks"]]
        assert out.returncode == 0 and summary["failed"] == 0, failed
        assert summary["passed"] > 0
        # Every skip is one the manifests justify in a comment next to it.
        for c in report["results"]["skipped_checks"]:
            assert c["check_id"] == "CKV_K8S_43", c


# -- agreement with the code ------------------------------------------------------------

def test_committed_topic_manifests_are_generated_from_the_registry():
    assert (DEPLOY / "topics" / "topics.yaml").read_text() == manifests(), (
        "deploy/topics/topics.yaml is stale: python -m streams.strimzi "
        "> deploy/topics/topics.yaml")


def test_topics_workers_and_scaling_agree(overlay, tmp_path):
    name, docs, _ = overlay
    env = env_of(docs)
    key_file = env.get("TRADEGUARD_CONTROL_KEY_FILE")
    if key_file:  # a mounted Secret in the cluster; a stand-in file to parse the rest here
        assert key_file.startswith("/var/run/secrets/"), key_file
        (tmp_path / "key").write_text("0" * 64 + "\n")
        env = {**env, "TRADEGUARD_CONTROL_KEY_FILE": str(tmp_path / "key")}
    settings = Settings.from_env(env)  # every value parses as the engine would read it
    known = {f"TRADEGUARD_{f.name.upper()}" for f in fields(Settings)}
    assert {k for k in env if k.startswith("TRADEGUARD_")} <= known

    topics = {t["spec"]["topicName"]: t for t in of_kind(docs, "KafkaTopic")}
    assert set(topics) == {settings.topic(t.name) for t in TOPICS}
    for spec in TOPICS:
        topic = topics[settings.topic(spec.name)]["spec"]
        assert topic["partitions"] == settings.partitions
        assert {k: str(v) for k, v in topic["config"].items()}.items() >= spec.config().items()
        assert topic["replicas"] == (1 if name == "dev" else 3)

    scaled = one(docs, "ScaledObject")["spec"]
    (trigger,) = scaled["triggers"]
    assert trigger["type"] == "kafka"
    assert trigger["metadata"]["consumerGroup"] == settings.app_id
    assert trigger["metadata"]["topic"] == settings.topic("orders")
    assert 1 <= scaled["minReplicaCount"] <= scaled["maxReplicaCount"]
    assert scaled["maxReplicaCount"] <= topics[settings.topic("orders")]["spec"]["partitions"]
    assert scaled["scaleTargetRef"]["name"] == one(docs, "Deployment")["metadata"]["name"]


def test_probes_ports_and_mounts_match_the_worker(overlay):
    _, docs, _ = overlay
    env = env_of(docs)
    pod = one(docs, "Deployment")["spec"]["template"]["spec"]
    (worker,) = pod["containers"]
    (port,) = worker["ports"]
    assert port["containerPort"] == int(env["TRADEGUARD_WEB_PORT"]) and port["name"] == "http"
    assert worker["livenessProbe"]["httpGet"]["path"] == "/healthz"
    assert worker["startupProbe"]["httpGet"]["path"] == "/healthz"
    assert worker["readinessProbe"]["httpGet"]["path"] == "/readyz"
    (endpoint,) = one(docs, "ServiceMonitor")["spec"]["endpoints"]
    assert endpoint["path"] == "/metrics" and endpoint["port"] == "http"
    mounts = {m["mountPath"] for m in worker["volumeMounts"]}
    assert env["TRADEGUARD_STATE_DIR"] in mounts
    assert env["NUMBA_CACHE_DIR"].startswith(env["TRADEGUARD_STATE_DIR"] + "/")
    assert str(Path(env["TRADEGUARD_POLICY_FILE"]).parent) in mounts
    for var in ("TRADEGUARD_SASL_PASSWORD_FILE", "TRADEGUARD_SSL_CAFILE",
                "TRADEGUARD_CONTROL_KEY_FILE"):
        if env.get(var):
            assert str(Path(env[var]).parent) in mounts, var
    assert worker["securityContext"]["readOnlyRootFilesystem"] is True
    assert not any("PASSWORD" in e["name"] for e in worker.get("env", []))


def test_the_policy_configmap_is_the_default_policy():
    assert (DEPLOY / "base" / "policy.toml").read_text() == \
        (ROOT / "tradeguard" / "policy" / "default.toml").read_text(), (
        "deploy/base/policy.toml differs from tradeguard/policy/default.toml: copy it again")


def test_the_dashboard_queries_only_metrics_the_engine_exposes():
    exposed = set()
    for source in (ROOT / "tradeguard" / "runtime" / "metrics.py", ROOT / "agents" / "web.py"):
        exposed |= set(re.findall(r'"(tradeguard_[a-z_]+)"', source.read_text()))
    dashboard = json.loads((DEPLOY / "grafana" / "tradeguard.json").read_text())
    queried = set()
    for panel in dashboard["panels"]:
        for target in panel["targets"]:
            queried |= set(re.findall(r"tradeguard_[a-z_]+", target["expr"]))
    queried = {re.sub(r"_(bucket|sum|count)$", "", q) for q in queried}
    assert queried and queried <= exposed, queried - exposed
