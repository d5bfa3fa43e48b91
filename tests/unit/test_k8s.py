"""The Kubernetes manifests (deploy/k8s) are valid and consistent with the code.

Offline and fast: the kustomization is rendered here in Python (it uses only
``namespace``, ``resources`` and ``images``, so this renderer is exact; when a
``kubectl`` binary is present its ``kubectl kustomize`` output is compared too), the
built-in kinds are validated against the Kubernetes JSON schemas that the
``kubernetes-validate`` package ships, and the operators' resources against the
fields their CRDs define. Then what matters is checked: an api and a worker per
service with probes where the apps serve them, the settings the code reads, the
network policies' effect (who may reach what), disruption budgets, no secret in the
manifests, one image, and KEDA scaling redaction from zero.
"""

from __future__ import annotations

import ast
import functools
import hashlib
import ipaddress
import json
import re
import shutil
import subprocess
from collections.abc import Iterator
from importlib import resources
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

import jsonschema
import pytest
import yaml

from shared.config import SERVICES, Settings

REPO = Path(__file__).resolve().parents[2]
K8S = REPO / "deploy" / "k8s"
ENV_DIR = REPO / "deploy" / "env"
COMPOSE: dict[str, Any] = yaml.safe_load((REPO / "docker-compose.yml").read_text())
# The oldest and the newest Kubernetes the manifests are checked against.
KUBERNETES_VERSIONS = ("1.30", "1.35")
CLUSTER_SCOPED = {"Namespace", "ClusterRole", "ClusterRoleBinding", "StorageClass"}
# Workloads whose pods are not ours but run in the namespace (the operators' pods).
RABBITMQ_POD = {
    "app.kubernetes.io/name": "rabbitmq",
    "app.kubernetes.io/component": "rabbitmq",
}
# Settings the manifests set that compose does not: the workers' metrics port.
K8S_ONLY = {"worker": {"METRICS_PORT"}, "api": set(), "portal": set()}
# Settings whose value differs from compose on purpose: S3 is external here, and the
# database host is each service's own cluster.
K8S_OWN_VALUES = {"S3_ENDPOINT", "S3_REGION"}
S3_USERS = {"intake", "redaction", "approval", "publishing"}
INTERNET_USERS = {"publishing"}  # the platforms' APIs
OUTSIDE = ("203.0.113.7", 443)  # an address outside the cluster (S3, a platform)
LOADER = getattr(yaml, "CSafeLoader", yaml.SafeLoader)  # libyaml: 10x faster


# --- rendering -------------------------------------------------------------------


def render(folder: Path) -> list[dict[str, Any]]:
    """What ``kubectl kustomize folder`` gives for the features the base uses."""
    kustomization = yaml.safe_load((folder / "kustomization.yaml").read_text())
    unsupported = set(kustomization) - {
        "apiVersion",
        "kind",
        "namespace",
        "resources",
        "images",
    }
    assert not unsupported, f"the test's renderer does not do {unsupported}"
    docs: list[dict[str, Any]] = []
    for entry in kustomization["resources"]:
        path = folder / entry
        assert path.is_file(), f"{entry}: only files are supported"
        docs += [d for d in yaml.load_all(path.read_text(), Loader=LOADER) if d]
    for doc in docs:
        if doc["kind"] not in CLUSTER_SCOPED and "namespace" in kustomization:
            doc["metadata"]["namespace"] = kustomization["namespace"]
        for container in containers(doc):
            for image in kustomization.get("images", []):
                if image_name(container["image"]) == image["name"]:
                    name = image.get("newName", image["name"])
                    container["image"] = f"{name}:{image['newTag']}"
    return docs


def image_name(image: str) -> str:
    return re.split(r"[@:]", image, maxsplit=1)[0]


def pod_spec(doc: dict[str, Any]) -> dict[str, Any] | None:
    if doc["kind"] in ("Deployment", "StatefulSet", "DaemonSet", "Job"):
        return doc["spec"]["template"]["spec"]
    return None


def containers(doc: dict[str, Any]) -> list[dict[str, Any]]:
    spec = pod_spec(doc)
    if spec is None:
        return []
    return [*spec.get("initContainers", []), *spec["containers"]]


DOCS = render(K8S)
BY_KIND: dict[str, list[dict[str, Any]]] = {}
for _doc in DOCS:
    BY_KIND.setdefault(_doc["kind"], []).append(_doc)
DEPLOYMENTS = {d["metadata"]["name"]: d for d in BY_KIND["Deployment"]}
_IMAGE = yaml.safe_load((K8S / "kustomization.yaml").read_text())["images"][0]
KUSTOMIZE_IMAGE = _IMAGE["name"]
SAFEPOST_IMAGE = f"{_IMAGE.get('newName', KUSTOMIZE_IMAGE)}:{_IMAGE['newTag']}"
APP_DEPLOYMENTS = sorted(
    name
    for name, d in DEPLOYMENTS.items()
    if any(c["image"] == SAFEPOST_IMAGE for c in containers(d))
)


def one(kind: str, name: str) -> dict[str, Any]:
    found = [d for d in BY_KIND.get(kind, []) if d["metadata"]["name"] == name]
    assert len(found) == 1, f"{kind}/{name}: {len(found)} found"
    return found[0]


def container_of(name: str) -> dict[str, Any]:
    (container,) = DEPLOYMENTS[name]["spec"]["template"]["spec"]["containers"]
    return container


def pod_labels(name: str) -> dict[str, str]:
    return DEPLOYMENTS[name]["spec"]["template"]["metadata"]["labels"]


def component(name: str) -> str:
    return pod_labels(name)["app.kubernetes.io/component"]


def settings_service(name: str) -> str:
    return "identity" if name == "portal" else name.rsplit("-", 1)[0]


def test_the_kustomization_renders_every_service_and_its_backing_services():
    expected = {f"{svc}-{kind}" for svc in SERVICES for kind in ("api", "worker")}

    assert set(APP_DEPLOYMENTS) == expected | {"portal"}
    assert set(DEPLOYMENTS) == set(APP_DEPLOYMENTS) | {"proxy"}
    assert len(BY_KIND["RabbitmqCluster"]) == 1
    assert {c["metadata"]["name"] for c in BY_KIND["Cluster"]} == {
        f"{db}-db" for db in (*SERVICES, "identity")
    }
    assert all(d["metadata"].get("namespace") == "safepost" for d in DOCS[1:])


def test_the_python_render_is_what_kubectl_kustomize_gives():
    kubectl = shutil.which("kubectl")
    if kubectl is None:
        pytest.skip("no kubectl binary (the Python render is checked by the rest)")

    result = subprocess.run(
        [kubectl, "kustomize", str(K8S)],
        capture_output=True,
        text=True,
        check=False,
        timeout=60,
    )

    assert result.returncode == 0, result.stderr
    theirs = [d for d in yaml.load_all(result.stdout, Loader=LOADER) if d]
    key = functools.partial(json.dumps, sort_keys=True)
    assert sorted(map(key, theirs)) == sorted(map(key, DOCS))


# --- schemas ---------------------------------------------------------------------


@functools.cache
def schema_dir(version: str) -> Path:
    base = resources.files("kubernetes_validate") / "kubernetes-json-schema"
    return Path(str(base / f"v{version}.0-local-strict"))


@functools.cache
def registry(version: str) -> Any:
    from referencing import Registry, Resource

    definitions = json.loads((schema_dir(version) / "_definitions.json").read_text())
    return Resource.from_contents(definitions) @ Registry()


@functools.cache
def builtin_validator(version: str, kind: str, api_version: str) -> Any:
    group = re.sub(r"^([^./]*)(?:\.[^/]*)?/", r"\1-", api_version)
    path = schema_dir(version) / f"{kind.lower()}-{group}.json"
    if not path.is_file():
        return None
    schema = json.loads(path.read_text())
    return jsonschema.Draft202012Validator(schema, registry=registry(version))


def obj(properties: dict[str, Any], required: tuple[str, ...] = ()) -> dict[str, Any]:
    """A closed object: a misspelt field is an error, as kubectl's strict apply says."""
    return {
        "type": "object",
        "properties": properties,
        "required": list(required),
        "additionalProperties": False,
    }


ANY_OBJECT = {"type": "object"}
STRING = {"type": "string", "minLength": 1}
NAME_REF = obj({"name": STRING}, ("name",))
QUANTITY = {"type": ["string", "integer"]}
METADATA = {
    "type": "object",
    "properties": {
        "name": {"type": "string", "pattern": r"^[a-z0-9]([-a-z0-9.]*[a-z0-9])?$"},
        "labels": {"type": "object", "additionalProperties": {"type": "string"}},
    },
    "required": ["name"],
}
SELECTOR = obj(
    {
        "matchLabels": {"type": "object", "additionalProperties": {"type": "string"}},
        "matchExpressions": {"type": "array"},
    }
)
# The fields of each operator resource that the CRDs define (and that these manifests
# may use), with what each requires: RabbitMQ Cluster Operator 2.x and Messaging
# Topology Operator 1.x, CloudNativePG 1.2x, KEDA 2.x, Prometheus Operator 0.7x+.
CRD_SPECS: dict[tuple[str, str], dict[str, Any]] = {
    ("rabbitmq.com/v1beta1", "RabbitmqCluster"): obj(
        {
            "replicas": {"type": "integer", "minimum": 0},
            "image": STRING,
            "imagePullSecrets": {"type": "array"},
            "resources": ANY_OBJECT,
            "persistence": obj({"storage": QUANTITY, "storageClassName": STRING}),
            "affinity": ANY_OBJECT,
            "tolerations": {"type": "array"},
            "rabbitmq": obj(
                {
                    "additionalConfig": {"type": "string"},
                    "additionalPlugins": {"type": "array"},
                    "advancedConfig": {"type": "string"},
                    "envConfig": {"type": "string"},
                }
            ),
            "service": ANY_OBJECT,
            "tls": ANY_OBJECT,
            "override": ANY_OBJECT,
            "terminationGracePeriodSeconds": {"type": "integer"},
            "delayStartSeconds": {"type": "integer"},
            "skipPostDeploySteps": {"type": "boolean"},
            "secretBackend": ANY_OBJECT,
        }
    ),
    ("rabbitmq.com/v1beta1", "Vhost"): obj(
        {
            "name": STRING,
            "tags": {"type": "array"},
            "defaultQueueType": {"enum": ["quorum", "classic", "stream"]},
            "tracing": {"type": "boolean"},
            "rabbitmqClusterReference": NAME_REF,
        },
        ("name", "rabbitmqClusterReference"),
    ),
    ("rabbitmq.com/v1beta1", "User"): obj(
        {
            "tags": {"type": "array", "items": {"type": "string"}},
            "rabbitmqClusterReference": NAME_REF,
            "importCredentialsSecret": NAME_REF,
        },
        ("rabbitmqClusterReference",),
    ),
    ("rabbitmq.com/v1beta1", "Permission"): obj(
        {
            "vhost": STRING,
            "user": STRING,
            "userReference": NAME_REF,
            "permissions": obj(
                {
                    "configure": {"type": "string"},
                    "write": {"type": "string"},
                    "read": {"type": "string"},
                },  # fmt: skip
            ),
            "rabbitmqClusterReference": NAME_REF,
        },
        ("vhost", "permissions", "rabbitmqClusterReference"),
    ),
    ("postgresql.cnpg.io/v1", "Cluster"): obj(
        {
            "instances": {"type": "integer", "minimum": 1},
            "imageName": STRING,
            "primaryUpdateStrategy": {"enum": ["unsupervised", "supervised"]},
            "enableSuperuserAccess": {"type": "boolean"},
            "bootstrap": obj(
                {
                    "initdb": obj(
                        {"database": STRING, "owner": STRING, "secret": NAME_REF},
                        ("database", "owner"),
                    )
                },
                ("initdb",),
            ),
            "storage": obj({"size": QUANTITY, "storageClass": STRING}, ("size",)),
            "resources": ANY_OBJECT,
            "affinity": obj(
                {
                    "enablePodAntiAffinity": {"type": "boolean"},
                    "topologyKey": STRING,
                    "podAntiAffinityType": {"enum": ["preferred", "required"]},
                }
            ),
            "postgresql": ANY_OBJECT,
            "monitoring": ANY_OBJECT,
            "backup": ANY_OBJECT,
        },
        ("instances", "storage"),
    ),
    ("keda.sh/v1alpha1", "TriggerAuthentication"): obj(
        {
            "secretTargetRef": {
                "type": "array",
                "minItems": 1,
                "items": obj(
                    {"parameter": STRING, "name": STRING, "key": STRING},
                    ("parameter", "name", "key"),
                ),
            }
        },
        ("secretTargetRef",),
    ),
    ("keda.sh/v1alpha1", "ScaledObject"): obj(
        {
            "scaleTargetRef": obj(
                {"apiVersion": STRING, "kind": STRING, "name": STRING}, ("name",)
            ),
            "minReplicaCount": {"type": "integer", "minimum": 0},
            "maxReplicaCount": {"type": "integer", "minimum": 1},
            "idleReplicaCount": {"type": "integer"},
            "pollingInterval": {"type": "integer", "minimum": 1},
            "cooldownPeriod": {"type": "integer", "minimum": 0},
            "fallback": ANY_OBJECT,
            "advanced": ANY_OBJECT,
            "triggers": {
                "type": "array",
                "minItems": 1,
                "items": obj(
                    {
                        "type": {"enum": ["rabbitmq", "cron"]},
                        "name": STRING,
                        "metadata": {
                            "type": "object",
                            "additionalProperties": {"type": "string"},
                        },
                        "authenticationRef": NAME_REF,
                        "metricType": {"enum": ["AverageValue", "Value"]},
                    },
                    ("type", "metadata"),
                ),
            },
        },
        ("scaleTargetRef", "triggers"),
    ),
    ("monitoring.coreos.com/v1", "ServiceMonitor"): obj(
        {
            "selector": SELECTOR,
            "namespaceSelector": ANY_OBJECT,
            "endpoints": {
                "type": "array",
                "minItems": 1,
                "items": obj(
                    {
                        "port": STRING,
                        "path": STRING,
                        "interval": STRING,
                        "scheme": {"enum": ["http", "https"]},
                    },  # fmt: skip
                    ("port",),
                ),
            },
        },
        ("selector", "endpoints"),
    ),
    ("monitoring.coreos.com/v1", "PodMonitor"): obj(
        {
            "selector": SELECTOR,
            "namespaceSelector": ANY_OBJECT,
            "podMetricsEndpoints": {
                "type": "array",
                "minItems": 1,
                "items": obj(
                    {"port": STRING, "path": STRING, "interval": STRING},
                    ("port",),
                ),
            },
        },
        ("selector", "podMetricsEndpoints"),
    ),
}
# What the trigger types need in their metadata (KEDA's scaler docs).
TRIGGER_METADATA = {
    "rabbitmq": obj(
        {
            "protocol": {"enum": ["amqp", "http", "auto"]},
            "queueName": STRING,
            "mode": {"enum": ["QueueLength", "MessageRate"]},
            "value": {"type": "string", "pattern": r"^[0-9]+(\.[0-9]+)?$"},
            "activationValue": {"type": "string"},
            "vhostName": STRING,
        },
        ("queueName", "mode", "value"),
    ),
    "cron": obj(
        {
            "timezone": STRING,
            "start": STRING,
            "end": STRING,
            "desiredReplicas": {"type": "string", "pattern": r"^[1-9][0-9]*$"},
        },
        ("timezone", "start", "end", "desiredReplicas"),
    ),
}


@pytest.mark.parametrize("version", KUBERNETES_VERSIONS)
def test_built_in_kinds_validate_strictly_against_the_kubernetes_schemas(version):
    checked = 0
    for doc in DOCS:
        validator = builtin_validator(version, doc["kind"], doc["apiVersion"])
        if validator is None:
            assert (doc["apiVersion"], doc["kind"]) in CRD_SPECS, (
                f"{doc['kind']} ({doc['apiVersion']}) is neither built in nor known"
            )
            continue
        errors = [
            f"{'.'.join(map(str, e.absolute_path))}: {e.message}"
            for e in validator.iter_errors(doc)
        ]
        assert not errors, f"{doc['kind']}/{doc['metadata']['name']}: {errors[:3]}"
        checked += 1

    assert checked > 50


def test_operator_resources_have_the_fields_their_crds_define():
    for doc in DOCS:
        spec_schema = CRD_SPECS.get((doc["apiVersion"], doc["kind"]))
        if spec_schema is None:
            continue
        schema = obj(
            {
                "apiVersion": STRING,
                "kind": STRING,
                "metadata": METADATA,
                "spec": spec_schema,
            },
            ("apiVersion", "kind", "metadata", "spec"),
        )
        where = f"{doc['kind']}/{doc['metadata']['name']}"
        errors = [
            f"{where} {'.'.join(map(str, e.absolute_path))}: {e.message}"
            for e in jsonschema.Draft202012Validator(schema).iter_errors(doc)
        ]
        for trigger in doc["spec"].get("triggers", []):
            errors += [
                f"{where} trigger {trigger.get('name')}: {e.message}"
                for e in jsonschema.Draft202012Validator(
                    TRIGGER_METADATA[trigger["type"]]
                ).iter_errors(trigger["metadata"])
            ]
        assert not errors, errors


def test_the_schema_checks_catch_a_misspelt_field():
    deployment = json.loads(json.dumps(DEPLOYMENTS["intake-api"]))
    deployment["spec"]["template"]["spec"]["containers"][0]["readinesProbe"] = {}
    scaled = json.loads(json.dumps(BY_KIND["ScaledObject"][0]))
    scaled["spec"]["minReplicas"] = 0
    validator = builtin_validator(KUBERNETES_VERSIONS[0], "Deployment", "apps/v1")
    crd = CRD_SPECS[("keda.sh/v1alpha1", "ScaledObject")]

    assert list(validator.iter_errors(deployment))
    assert list(jsonschema.Draft202012Validator(crd).iter_errors(scaled["spec"]))


# --- the apps: commands, probes, settings ----------------------------------------


def compose_command(name: str) -> list[str]:
    return COMPOSE["services"][name]["command"]


@pytest.mark.parametrize("name", APP_DEPLOYMENTS)
def test_each_app_runs_the_command_compose_runs_in_the_same_image(name):
    container = container_of(name)

    assert container["args"] == compose_command(name)
    assert "command" not in container  # the image's entrypoint guards placeholders
    assert container["image"] == SAFEPOST_IMAGE
    # The image kustomize replaces is the one compose builds from deploy/Dockerfile.
    assert image_name(COMPOSE["services"][name]["image"]) == KUSTOMIZE_IMAGE
    assert COMPOSE["services"][name]["build"]["dockerfile"] == "deploy/Dockerfile"


def test_every_image_is_pinned_to_a_tag_and_ours_is_one_image():
    images = {c["image"] for d in DOCS for c in containers(d)}

    assert images == {SAFEPOST_IMAGE, "nginxinc/nginx-unprivileged:1.27-alpine"}
    assert (
        BY_KIND["RabbitmqCluster"][0]["spec"]["image"]
        == (COMPOSE["services"]["rabbitmq"]["image"])
    )
    for cluster in BY_KIND["Cluster"]:
        assert re.fullmatch(
            r"ghcr\.io/cloudnative-pg/postgresql:16\.\d+.*",
            cluster["spec"]["imageName"],
        ), "PostgreSQL 16, as compose runs"


def probe_path(probe: dict[str, Any]) -> tuple[str, int | str]:
    return probe["httpGet"]["path"], probe["httpGet"]["port"]


def named_port(container: dict[str, Any], port: int | str) -> int:
    if isinstance(port, int):
        return port
    (number,) = [p["containerPort"] for p in container["ports"] if p["name"] == port]
    return number


@pytest.mark.parametrize("svc", SERVICES)
def test_each_api_is_probed_on_healthz_and_readyz_under_its_prefix(svc):
    container = container_of(f"{svc}-api")
    env = {e["name"]: e.get("value") for e in container["env"]}

    # gunicorn refuses a path outside SCRIPT_NAME, so the probes carry the prefix.
    assert env["SCRIPT_NAME"] == f"/{svc}"
    for kind, path in [
        ("livenessProbe", f"/{svc}/healthz"),
        ("startupProbe", f"/{svc}/healthz"),
        ("readinessProbe", f"/{svc}/readyz"),
    ]:
        probe_at, port = probe_path(container[kind])
        assert probe_at == path, kind
        assert named_port(container, port) == 8000
    bind = compose_command(f"{svc}-api")[
        compose_command(f"{svc}-api").index("--bind") + 1
    ]
    assert bind.endswith(":8000")


def test_the_portal_is_probed_at_the_root():
    container = container_of("portal")

    assert probe_path(container["livenessProbe"])[0] == "/healthz"
    assert probe_path(container["readinessProbe"])[0] == "/readyz"


def test_the_apps_answer_the_probed_routes():
    from shared import web

    app = web.create_app("probe", secret_key="k" * 40, ports=None)
    client = app.test_client()

    assert client.get("/healthz").status_code == 200
    assert client.get("/readyz").status_code == 200


@pytest.mark.parametrize("svc", SERVICES)
def test_each_worker_is_probed_with_the_compose_health_check(svc):
    container = container_of(f"{svc}-worker")
    compose_test = COMPOSE["services"][f"{svc}-worker"]["healthcheck"]["test"]

    assert container["readinessProbe"]["exec"]["command"] == compose_test[1:]
    assert compose_test[1:] == [
        "python",
        "/usr/local/lib/safepost/healthcheck.py",
        "worker",
        svc,
    ]
    dockerfile = (REPO / "deploy" / "Dockerfile").read_text()
    assert "deploy/healthcheck.py /usr/local/lib/safepost/healthcheck.py" in dockerfile


@pytest.mark.parametrize("name", APP_DEPLOYMENTS)
def test_every_app_container_is_locked_down_and_has_resources(name):
    spec = DEPLOYMENTS[name]["spec"]["template"]["spec"]
    container = container_of(name)

    assert spec["automountServiceAccountToken"] is False
    assert spec["securityContext"]["runAsNonRoot"] is True
    assert spec["securityContext"]["runAsUser"] == 10001  # the image's user
    assert container["securityContext"] == {
        "allowPrivilegeEscalation": False,
        "readOnlyRootFilesystem": True,
        "capabilities": {"drop": ["ALL"]},
    }
    mounts = {m["mountPath"] for m in container["volumeMounts"]}
    assert {"/tmp", "/var/lib/safepost"} <= mounts  # compose's tmpfs
    for bound in ("requests", "limits"):
        assert set(container["resources"][bound]) >= {"cpu", "memory"}, bound


# --- secrets and settings --------------------------------------------------------


@pytest.fixture(scope="module")
def filled_env(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """deploy/env with each CHANGE_ME_<NAME> placeholder replaced by one value
    everywhere it appears, as deploy/gen-secrets.sh does (test_compose runs it)."""
    env_dir = tmp_path_factory.mktemp("env")
    for path in ENV_DIR.glob("*.env"):
        text = re.sub(
            r"CHANGE_ME_[A-Z0-9_]+",
            lambda m: hashlib.sha256(m.group().encode()).hexdigest()[:48],
            path.read_text(),
        )
        (env_dir / path.name).write_text(text)
    return env_dir


# Stands in for kubectl: `create secret generic NAME --namespace NS --from-env-file=F`
# prints the Secret (here: a header line and F), `apply -f -` records what it reads.
FAKE_KUBECTL = """#!/bin/sh
case "$1" in
  create)
    for arg; do case "$arg" in --from-env-file=*) file="${arg#*=}" ;; esac; done
    echo "#secret $4 $6"
    cat "$file" ;;
  apply)
    { echo "---"; cat; } >>"$0.applied" ;;
  *) echo "unexpected: $*" >&2; exit 2 ;;
esac
"""


@pytest.fixture(scope="module")
def created_secrets(
    filled_env: Path, tmp_path_factory: pytest.TempPathFactory
) -> dict[str, dict[str, str]]:
    """The Secrets create-secrets.sh makes from the filled env files: name -> data."""
    kubectl = tmp_path_factory.mktemp("bin") / "kubectl"
    kubectl.write_text(FAKE_KUBECTL)
    kubectl.chmod(0o755)

    subprocess.run(
        ["sh", str(K8S / "create-secrets.sh"), str(filled_env)],
        env={"PATH": "/usr/bin:/bin", "KUBECTL": str(kubectl)},
        check=True,
        capture_output=True,
    )

    secrets: dict[str, dict[str, str]] = {}
    for chunk in Path(f"{kubectl}.applied").read_text().split("---\n")[1:]:
        header, *lines = chunk.splitlines()
        _, name, namespace = header.split()
        assert namespace == "safepost"
        secrets[name] = dict(line.split("=", 1) for line in lines)
    return secrets


def cnpg_secrets() -> dict[str, dict[str, str]]:
    """The ``<cluster>-app`` Secret CloudNativePG makes for each cluster."""
    made = {}
    for cluster in BY_KIND["Cluster"]:
        name = cluster["metadata"]["name"]
        init = cluster["spec"]["bootstrap"]["initdb"]
        assert "secret" not in init, "then CloudNativePG makes no -app Secret"
        host = f"{name}-rw.{cluster['metadata']['namespace']}"
        made[f"{name}-app"] = {
            "username": init["owner"],
            "password": "generated",
            "uri": f"postgresql://{init['owner']}:generated@{host}:5432/{init['database']}",
        }
    return made


def secret_refs() -> Iterator[tuple[str, str, str]]:
    """(where, secret name, key) for every secret the manifests read by key."""
    for name in DEPLOYMENTS:
        for container in containers(DEPLOYMENTS[name]):
            for env in container.get("env", []):
                ref = env.get("valueFrom", {}).get("secretKeyRef")
                if ref:
                    yield f"{name} {env['name']}", ref["name"], ref["key"]
    for auth in BY_KIND["TriggerAuthentication"]:
        for ref in auth["spec"]["secretTargetRef"]:
            yield auth["metadata"]["name"], ref["name"], ref["key"]
    for user in BY_KIND["User"]:
        for key in ("username", "password"):
            yield (
                user["metadata"]["name"],
                user["spec"]["importCredentialsSecret"]["name"],
                key,
            )


def test_every_secret_the_manifests_read_is_made_by_the_script_or_the_operator(
    created_secrets,
):
    available = created_secrets | cnpg_secrets()
    missing = [
        (where, name, key)
        for where, name, key in secret_refs()
        if key not in available.get(name, {})
    ]

    assert not missing
    assert not any(name in created_secrets for name in cnpg_secrets())


def test_the_manifests_hold_no_secret_values():
    assert "Secret" not in BY_KIND
    for doc in DOCS:
        for container in containers(doc):
            for env in container.get("env", []):
                if "value" in env:
                    assert not re.search(
                        r"PASSWORD|SECRET|TOKEN|KEYS?$|DATABASE_URL|AMQP_URL",
                        env["name"],
                    ), env["name"]
                    assert not urlsplit(env["value"]).password, env["name"]
    for config in BY_KIND["ConfigMap"]:
        for key, value in config["data"].items():
            assert not re.search(r"PASSWORD|SECRET|TOKEN|_KEYS?$", key), key
            if "://" in value and "\n" not in value:
                assert not urlsplit(value).password, key


def config_maps() -> dict[str, dict[str, str]]:
    return {c["metadata"]["name"]: c["data"] for c in BY_KIND["ConfigMap"]}


def k8s_env(name: str, secrets: dict[str, dict[str, str]]) -> dict[str, str]:
    """The environment the container of Deployment ``name`` starts with."""
    container = container_of(name)
    env: dict[str, str] = {}
    for source in container.get("envFrom", []):
        if "configMapRef" in source:
            env.update(config_maps()[source["configMapRef"]["name"]])
        else:
            ref = source["secretRef"]
            assert ref.get("optional") or ref["name"] in secrets, ref
            env.update(secrets.get(ref["name"], {}))
    for item in container.get("env", []):
        if "value" in item:
            env[item["name"]] = item["value"]
        else:
            ref = item["valueFrom"]["secretKeyRef"]
            env[item["name"]] = secrets[ref["name"]][ref["key"]]
    return env


def compose_env(name: str, env_dir: Path) -> dict[str, str]:
    container = COMPOSE["services"][name]
    env: dict[str, str] = {}
    for entry in container["env_file"]:
        path = env_dir / Path(entry).name
        for line in path.read_text().splitlines():
            if line.strip() and not line.lstrip().startswith("#"):
                key, value = line.split("=", 1)
                env[key.strip()] = value.strip()
    env.update({k: str(v) for k, v in (container.get("environment") or {}).items()})
    return env


@pytest.mark.parametrize("name", APP_DEPLOYMENTS)
def test_each_app_gets_the_settings_compose_gives_it(name, filled_env, created_secrets):
    env = k8s_env(name, created_secrets | cnpg_secrets())
    compose = compose_env(name, filled_env)

    assert set(env) == set(compose) | K8S_ONLY[component(name)]
    differing = {k for k in compose if env[k] != compose[k]}
    assert differing <= K8S_OWN_VALUES | {
        f"{settings_service(name).upper()}_DATABASE_URL"
    }


@pytest.mark.parametrize("name", APP_DEPLOYMENTS)
def test_each_app_gets_complete_production_settings_and_its_own_database(
    name, created_secrets
):
    service = settings_service(name)

    settings = Settings.from_env(
        service, k8s_env(name, created_secrets | cnpg_secrets())
    )

    assert not settings.embedded
    assert settings.s3_sse == "AES256"
    url = urlsplit(settings.database_url)
    assert (url.scheme, url.username, url.path) == (
        "postgresql",
        service,
        f"/{service}",
    )
    assert url.hostname == f"{service}-db-rw.safepost"  # its own cluster's primary
    assert (settings.s3_access_key is not None) == (service in S3_USERS)


def test_the_redaction_worker_takes_one_photo_at_a_time(created_secrets):
    env = k8s_env("redaction-worker", created_secrets | cnpg_secrets())

    assert Settings.from_env("redaction", env).prefetch == 1


def test_the_broker_url_names_the_cluster_vhost_and_user_the_operators_make(
    created_secrets,
):
    url = urlsplit(created_secrets["safepost-common"]["AMQP_URL"])
    user = created_secrets["safepost-rabbitmq-user"]
    (permission,) = BY_KIND["Permission"]

    assert url.hostname == BY_KIND["RabbitmqCluster"][0]["metadata"]["name"]
    assert url.path == "/" + one("Vhost", "safepost")["spec"]["name"]
    assert (url.username, url.password) == (user["username"], user["password"])
    assert permission["spec"]["vhost"] == one("Vhost", "safepost")["spec"]["name"]
    assert (
        permission["spec"]["userReference"]["name"]
        == BY_KIND["User"][0]["metadata"]["name"]
    )


def test_create_secrets_refuses_a_placeholder_left_in_the_env_files(tmp_path):
    shutil.copytree(ENV_DIR, tmp_path / "env")

    result = subprocess.run(
        ["sh", str(K8S / "create-secrets.sh"), str(tmp_path / "env")],
        env={"PATH": "/usr/bin:/bin", "KUBECTL": "/bin/false"},
        capture_output=True,
        text=True,
        check=False,
    )

    assert result.returncode != 0
    assert "AMQP_URL" in result.stderr and "CHANGE_ME_" not in result.stderr


def test_every_config_map_claim_and_account_referenced_exists():
    names = {(d["kind"], d["metadata"]["name"]) for d in DOCS}
    for name, deployment in DEPLOYMENTS.items():
        spec = deployment["spec"]["template"]["spec"]
        assert ("ServiceAccount", spec["serviceAccountName"]) in names, name
        for volume in spec.get("volumes", []):
            if "configMap" in volume:
                assert ("ConfigMap", volume["configMap"]["name"]) in names
            if "persistentVolumeClaim" in volume:
                claim = volume["persistentVolumeClaim"]["claimName"]
                assert ("PersistentVolumeClaim", claim) in names
        for container in containers(deployment):
            for source in container.get("envFrom", []):
                if "configMapRef" in source:
                    assert ("ConfigMap", source["configMapRef"]["name"]) in names


# --- services, monitoring ----------------------------------------------------------


def matches(selector: dict[str, Any], labels: dict[str, str]) -> bool:
    """Kubernetes label-selector semantics (matchLabels and matchExpressions)."""
    for key, value in selector.get("matchLabels", {}).items():
        if labels.get(key) != value:
            return False
    for expr in selector.get("matchExpressions", []):
        key, op, values = expr["key"], expr["operator"], expr.get("values", [])
        if op == "In" and labels.get(key) not in values:
            return False
        if op == "NotIn" and labels.get(key) in values:
            return False
        if op == "Exists" and key not in labels:
            return False
        if op == "DoesNotExist" and key in labels:
            return False
    return True


def pods_selected(selector: dict[str, Any]) -> list[str]:
    return [name for name in DEPLOYMENTS if matches(selector, pod_labels(name))]


def test_each_service_reaches_exactly_its_deployment_on_a_named_port():
    for service in BY_KIND["Service"]:
        (target,) = pods_selected({"matchLabels": service["spec"]["selector"]})
        ports = {p["name"] for c in containers(DEPLOYMENTS[target]) for p in c["ports"]}
        for port in service["spec"]["ports"]:
            assert port["targetPort"] in ports, service["metadata"]["name"]
    assert {s["metadata"]["name"] for s in BY_KIND["Service"]} == {
        *(f"{svc}-api" for svc in SERVICES),
        "portal",
        "proxy",
    }


def test_the_proxy_routes_each_prefix_to_its_api_and_the_rest_to_the_portal():
    config = one("ConfigMap", "proxy-nginx")["data"]["nginx.conf"]
    routes = dict(
        re.findall(
            r"location\s+(/[\w-]*/?)\s*\{\s*proxy_pass\s+http://([\w-]+):8000;", config
        )
    )
    services = {s["metadata"]["name"] for s in BY_KIND["Service"]}

    assert routes == {f"/{svc}/": f"{svc}-api" for svc in SERVICES} | {"/": "portal"}
    assert set(routes.values()) <= services
    (rule,) = one("Ingress", "safepost")["spec"]["rules"]
    assert rule["http"]["paths"][0]["backend"]["service"]["name"] == "proxy"
    # The public URL the platforms fetch images from is the Ingress host.
    public = urlsplit(config_maps()["publishing-config"]["PUBLIC_URL"])
    assert (public.scheme, public.hostname) == ("https", rule["host"])


def test_the_proxy_config_is_valid_nginx(tmp_path):
    nginx = shutil.which("nginx") or shutil.which("nginx", path="/usr/sbin")
    if nginx is None:
        pytest.skip("no nginx binary")
    config = one("ConfigMap", "proxy-nginx")["data"]["nginx.conf"]
    # The Services' names resolve only in the cluster; the temporary paths are ours.
    config = re.sub(r"http://[\w-]+:8000", "http://127.0.0.1:8000", config)
    config = config.replace("/tmp/", f"{tmp_path}/")
    (tmp_path / "nginx.conf").write_text(config)

    result = subprocess.run(
        [nginx, "-t", "-q", "-c", str(tmp_path / "nginx.conf"), "-e", "/dev/stderr"],
        capture_output=True,
        text=True,
        check=False,
    )

    assert result.returncode == 0, result.stderr


def test_every_api_and_worker_is_scraped_on_the_port_and_path_it_serves_metrics():
    for svc in SERVICES:
        service = one("Service", f"{svc}-api")
        (monitor,) = [
            m
            for m in BY_KIND["ServiceMonitor"]
            if matches(m["spec"]["selector"], service["metadata"]["labels"])
        ]
        (endpoint,) = monitor["spec"]["endpoints"]
        (port,) = [p for p in service["spec"]["ports"] if p["name"] == endpoint["port"]]
        assert port["port"] == 8000
        # The app serves /metrics; gunicorn serves it under SCRIPT_NAME.
        assert endpoint["path"] == f"/{svc}/metrics"
    (pod_monitor,) = BY_KIND["PodMonitor"]
    scraped = set(pods_selected(pod_monitor["spec"]["selector"]))
    assert scraped == {f"{svc}-worker" for svc in SERVICES}
    (endpoint,) = pod_monitor["spec"]["podMetricsEndpoints"]
    for name in scraped:
        container = container_of(name)
        env = {e["name"]: e.get("value") for e in container["env"]}
        assert named_port(container, endpoint["port"]) == int(env["METRICS_PORT"])


# --- availability -----------------------------------------------------------------


def test_every_workload_is_covered_by_exactly_one_disruption_budget():
    budgets = BY_KIND["PodDisruptionBudget"]
    for name in DEPLOYMENTS:
        covering = [
            b for b in budgets if matches(b["spec"]["selector"], pod_labels(name))
        ]
        assert len(covering) == 1, name
        replicas = DEPLOYMENTS[name]["spec"].get("replicas", 1)
        if "minAvailable" in covering[0]["spec"]:
            assert covering[0]["spec"]["minAvailable"] < replicas, name
    rabbit = [b for b in budgets if matches(b["spec"]["selector"], RABBITMQ_POD)]
    assert [b["spec"].get("maxUnavailable") for b in rabbit] == [1]


def test_rabbitmq_has_three_nodes_for_the_quorum_queues():
    (cluster,) = BY_KIND["RabbitmqCluster"]

    assert cluster["spec"]["replicas"] == 3
    assert '"x-queue-type": "quorum"' in (REPO / "shared" / "bus.py").read_text()


# --- KEDA ---------------------------------------------------------------------------


def string_constants(paths: list[Path]) -> set[str]:
    found: set[str] = set()
    for path in paths:
        for node in ast.walk(ast.parse(path.read_text())):
            if isinstance(node, ast.Constant) and isinstance(node.value, str):
                found.add(node.value)
    return found


def test_keda_scales_the_redaction_workers_from_zero_on_their_queues():
    from shared import bus

    (scaled,) = BY_KIND["ScaledObject"]
    spec = scaled["spec"]
    rabbit = [t for t in spec["triggers"] if t["type"] == "rabbitmq"]
    (auth,) = BY_KIND["TriggerAuthentication"]

    assert spec["scaleTargetRef"]["name"] == "redaction-worker"
    assert spec["minReplicaCount"] == 0 < spec["maxReplicaCount"]
    # KEDA owns the count: a replicas field would be re-applied over it.
    assert "replicas" not in DEPLOYMENTS["redaction-worker"]["spec"]
    assert {t["metadata"]["queueName"] for t in rabbit} == {
        bus.service_queue("redaction", []).name,
        "redaction.decisions",
    }
    assert all(t["metadata"]["protocol"] == "amqp" for t in rabbit)
    assert all(
        t["authenticationRef"]["name"] == auth["metadata"]["name"] for t in rabbit
    )
    assert auth["spec"]["secretTargetRef"] == [
        {"parameter": "host", "name": "safepost-common", "key": "AMQP_URL"}
    ]


def test_the_queues_keda_watches_are_queues_the_code_declares():
    from shared import bus

    (scaled,) = BY_KIND["ScaledObject"]
    constants = string_constants(
        [
            REPO / "shared" / "bus.py",
            *sorted((REPO / "services" / "redaction").glob("*.py")),
        ]
    )
    main = bus.service_queue("redaction", []).name

    for trigger in scaled["spec"]["triggers"]:
        if trigger["type"] != "rabbitmq":
            continue
        queue = trigger["metadata"]["queueName"]
        lane = queue.removeprefix(f"{main}.")
        assert queue == main or queue in constants or lane in constants, (
            f"KEDA watches {queue!r}, which the redaction worker does not declare"
        )


def test_a_nightly_wake_up_keeps_the_retention_sweep_running_at_zero():
    (scaled,) = BY_KIND["ScaledObject"]
    (cron,) = [t for t in scaled["spec"]["triggers"] if t["type"] == "cron"]
    worker = (REPO / "services" / "redaction" / "worker.py").read_text()

    assert cron["metadata"]["desiredReplicas"] == "1"
    assert "sweep" in worker  # the sweep lives in the worker process
    assert scaled["spec"]["cooldownPeriod"] >= 60


# --- network policies --------------------------------------------------------------

Pod = tuple[str, dict[str, str]]  # (namespace, labels); namespace "" = outside


def pod(name: str) -> Pod:
    return "safepost", pod_labels(name)


RABBITMQ: Pod = ("safepost", RABBITMQ_POD)
EXTERNAL: Pod = ("", {})


def db_pod(db: str) -> Pod:
    return "safepost", {"cnpg.io/cluster": f"{db}-db", "cnpg.io/podRole": "instance"}


def ns_pod(namespace: str, labels: dict[str, str] | None = None) -> Pod:
    return namespace, labels or {}


def peer_matches(peer: dict[str, Any], other: Pod, ip: str | None) -> bool:
    namespace, labels = other
    if "ipBlock" in peer:
        if ip is None:
            return False
        block = peer["ipBlock"]
        address = ipaddress.ip_address(ip)
        return address in ipaddress.ip_network(block["cidr"]) and not any(
            address in ipaddress.ip_network(e) for e in block.get("except", [])
        )
    if not namespace:
        return False  # outside the cluster: only an ipBlock matches
    if "namespaceSelector" in peer:
        ns_labels = {"kubernetes.io/metadata.name": namespace}
        if not matches(peer["namespaceSelector"], ns_labels):
            return False
    elif namespace != "safepost":
        return False
    return matches(peer.get("podSelector", {}), labels)


def port_matches(
    rule_ports: list[dict[str, Any]] | None, port: int, proto: str
) -> bool:
    if not rule_ports:
        return True
    for p in rule_ports:
        if p.get("protocol", "TCP") != proto:
            continue
        if "port" not in p:
            return True
        if p["port"] <= port <= p.get("endPort", p["port"]):
            return True
    return False


def direction_allows(
    subject: Pod,
    other: Pod,
    other_ip: str | None,
    port: int,
    proto: str,
    direction: str,
) -> bool:
    """Whether the policies selecting ``subject`` let this connection through."""
    namespace, labels = subject
    if namespace != "safepost":
        return True  # policies here govern this namespace only
    policy_type = "Ingress" if direction == "ingress" else "Egress"
    field = "from" if direction == "ingress" else "to"
    selecting = [
        p
        for p in BY_KIND["NetworkPolicy"]
        if policy_type in p["spec"]["policyTypes"]
        and matches(p["spec"]["podSelector"], labels)
    ]
    if not selecting:
        return True
    for policy in selecting:
        for rule in policy["spec"].get(direction, []):
            peers = rule.get(field)
            if (not peers or any(peer_matches(x, other, other_ip) for x in peers)) and (
                port_matches(rule.get("ports"), port, proto)
            ):
                return True
    return False


def allowed(
    src: Pod, dst: Pod, port: int, proto: str = "TCP", ip: str | None = None
) -> bool:
    """Whether ``src`` may open a connection to ``dst`` on ``port``: both its egress
    and ``dst``'s ingress must allow it. Outside the cluster, ``ip`` is the address."""
    src_ip = OUTSIDE[0] if src[0] == "" else "10.0.0.8"
    dst_ip = (ip or OUTSIDE[0]) if dst[0] == "" else "10.0.0.9"
    return direction_allows(src, dst, dst_ip, port, proto, "egress") and (
        direction_allows(dst, src, src_ip, port, proto, "ingress")
    )


def admits(dst: Pod, src: Pod, port: int) -> bool:
    """Whether ``dst``'s ingress policies alone admit ``src`` (defence in depth: each
    side must refuse what it does not need, not just one of them)."""
    return direction_allows(dst, src, "10.0.0.8", port, "TCP", "ingress")


def test_everything_is_denied_unless_a_policy_allows_it():
    deny = one("NetworkPolicy", "default-deny")["spec"]

    assert deny == {"podSelector": {}, "policyTypes": ["Ingress", "Egress"]}
    for name in DEPLOYMENTS:
        specific = [
            p
            for p in BY_KIND["NetworkPolicy"]
            if p["spec"]["podSelector"]
            and matches(p["spec"]["podSelector"], pod_labels(name))
        ]
        assert specific, f"{name} has no policy of its own"


@pytest.mark.parametrize("name", sorted(DEPLOYMENTS))
def test_every_pod_may_resolve_names(name):
    dns = ns_pod("kube-system", {"k8s-app": "kube-dns"})

    assert allowed(pod(name), dns, 53, "UDP") and allowed(pod(name), dns, 53, "TCP")


@pytest.mark.parametrize("svc", SERVICES)
def test_each_service_reaches_the_broker_and_only_its_own_database(svc):
    for name in (f"{svc}-api", f"{svc}-worker"):
        assert allowed(pod(name), RABBITMQ, 5672), name
        for db in (*SERVICES, "identity"):
            assert allowed(pod(name), db_pod(db), 5432) == (db == svc), (name, db)
            assert admits(db_pod(db), pod(name), 5432) == (db == svc), (name, db)
        assert not allowed(pod(name), RABBITMQ, 15672), "management API"


@pytest.mark.parametrize("svc", SERVICES)
def test_only_bucket_and_platform_users_reach_outside_and_only_over_https(svc):
    for name in (f"{svc}-api", f"{svc}-worker"):
        assert allowed(pod(name), EXTERNAL, 443, ip=OUTSIDE[0]) == (
            svc in S3_USERS | INTERNET_USERS
        ), name
        assert not allowed(pod(name), EXTERNAL, 80, ip=OUTSIDE[0]), name
        assert not allowed(pod(name), EXTERNAL, 5432, ip=OUTSIDE[0]), name


@pytest.mark.parametrize("svc", SERVICES)
def test_apis_are_reached_only_from_the_proxy_and_prometheus(svc):
    api = pod(f"{svc}-api")

    assert allowed(pod("proxy"), api, 8000)
    assert allowed(
        ns_pod("monitoring", {"app.kubernetes.io/name": "prometheus"}), api, 8000
    )
    for other in DEPLOYMENTS:
        if other != "proxy":
            assert not allowed(pod(other), api, 8000), other
            assert not admits(api, pod(other), 8000), other
    assert not allowed(ns_pod("default"), api, 8000)
    assert not allowed(EXTERNAL, api, 8000)


def test_services_never_call_each_other_they_talk_through_messages():
    for src in APP_DEPLOYMENTS:
        for dst in APP_DEPLOYMENTS:
            if src != dst:
                for port in (8000, 9100):
                    assert not allowed(pod(src), pod(dst), port), (src, dst, port)


def test_the_portal_reaches_only_its_database_and_is_reached_from_the_proxy():
    portal = pod("portal")

    assert allowed(pod("proxy"), portal, 8000)
    assert allowed(portal, db_pod("identity"), 5432)
    assert not allowed(portal, RABBITMQ, 5672)
    assert not allowed(portal, EXTERNAL, 443, ip=OUTSIDE[0])
    assert not any(allowed(portal, db_pod(db), 5432) for db in SERVICES)


def test_the_proxy_is_reachable_from_the_ingress_controller_and_reaches_only_apps():
    proxy = pod("proxy")
    ingress = ns_pod("ingress-nginx", {"app.kubernetes.io/name": "ingress-nginx"})

    assert allowed(ingress, proxy, 8080)
    assert not allowed(proxy, RABBITMQ, 5672)
    assert not allowed(proxy, db_pod("intake"), 5432)
    assert not allowed(proxy, EXTERNAL, 443, ip=OUTSIDE[0])


def test_the_operators_keda_and_prometheus_reach_what_they_manage():
    keda = ns_pod("keda", {"app": "keda-operator"})
    cnpg = ns_pod("cnpg-system", {"app.kubernetes.io/name": "cloudnative-pg"})
    rabbit_operator = ns_pod("rabbitmq-system")
    prometheus = ns_pod("monitoring", {"app.kubernetes.io/name": "prometheus"})

    assert allowed(keda, RABBITMQ, 5672)
    assert allowed(rabbit_operator, RABBITMQ, 15672)
    assert allowed(RABBITMQ, RABBITMQ, 25672) and allowed(RABBITMQ, RABBITMQ, 4369)
    for db in (*SERVICES, "identity"):
        assert allowed(cnpg, db_pod(db), 8000)
        assert allowed(db_pod(db), db_pod(db), 5432)  # streaming replication
        assert not allowed(
            db_pod(db), db_pod("audit" if db != "audit" else "intake"), 5432
        )
    for svc in SERVICES:
        assert allowed(prometheus, pod(f"{svc}-worker"), 9100)
    assert not allowed(keda, db_pod("intake"), 5432)
