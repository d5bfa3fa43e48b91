"""Settings.from_env: embedded by default; production all or nothing."""

from __future__ import annotations

import stat
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import pytest

from shared.config import EMBEDDED_SECRET_FILE, SERVICES, Settings
from shared.errors import ConfigError

PRODUCTION = {
    "AMQP_URL": "amqp://u:p@rabbit:5672/safepost",
    "SAFEPOST_SECRET_KEY": "k" * 48,
    "S3_ENDPOINT": "https://s3.example.org",
    "DATABASE_URL": "postgresql://u@db/safepost",
}


def test_no_production_variables_means_the_embedded_mode(tmp_path: Path) -> None:
    settings = Settings.from_env("consent", {"SAFEPOST_DATA_DIR": str(tmp_path)})

    assert settings.embedded
    assert settings.amqp_url == "memory://"
    assert settings.database_url == f"sqlite:///{tmp_path}/db/consent.sqlite3"
    assert not settings.uses_s3
    assert not settings.secure_cookies


def test_the_embedded_secret_is_made_private_once_and_reused(tmp_path: Path) -> None:
    env = {"SAFEPOST_DATA_DIR": str(tmp_path)}

    first = Settings.from_env("intake", env).secret_key
    second = Settings.from_env("audit", env).secret_key

    assert first == second
    assert len(first) >= 32
    secret_file = tmp_path / EMBEDDED_SECRET_FILE
    assert stat.S_IMODE(secret_file.stat().st_mode) == 0o600
    assert [p.name for p in tmp_path.iterdir()] == [EMBEDDED_SECRET_FILE]


def test_processes_starting_together_agree_on_one_embedded_secret(
    tmp_path: Path,
) -> None:
    env = {"SAFEPOST_DATA_DIR": str(tmp_path)}

    with ThreadPoolExecutor(max_workers=8) as pool:
        made = pool.map(lambda s: Settings.from_env(s, env).secret_key, SERVICES * 2)
        keys = set(made)

    assert len(keys) == 1


def test_an_empty_secret_file_is_refused_not_used(tmp_path: Path) -> None:
    (tmp_path / EMBEDDED_SECRET_FILE).write_text("\n")

    with pytest.raises(ConfigError, match="no usable secret key"):
        Settings.from_env("intake", {"SAFEPOST_DATA_DIR": str(tmp_path)})


def test_a_complete_production_environment_is_accepted(tmp_path: Path) -> None:
    env = {
        **PRODUCTION,
        "SAFEPOST_DATA_DIR": str(tmp_path),
        "S3_BUCKET_PREFIX": "trust",
    }

    settings = Settings.from_env("approval", env)

    assert not settings.embedded
    assert settings.amqp_url == PRODUCTION["AMQP_URL"]
    assert settings.database_url == PRODUCTION["DATABASE_URL"]
    assert settings.secret_key == PRODUCTION["SAFEPOST_SECRET_KEY"]
    assert settings.s3_buckets == {
        "originals": "trust-originals",
        "redacted": "trust-redacted",
        "previews": "trust-previews",
    }
    assert settings.s3_sse == "AES256"
    assert settings.secure_cookies
    assert not (tmp_path / EMBEDDED_SECRET_FILE).exists()


def test_a_service_database_url_wins_over_the_shared_one() -> None:
    env = {**PRODUCTION, "AUDIT_DATABASE_URL": "postgresql://u@db/audit"}

    assert Settings.from_env("audit", env).database_url == "postgresql://u@db/audit"
    assert Settings.from_env("intake", env).database_url == PRODUCTION["DATABASE_URL"]


def test_a_service_database_url_alone_is_enough_for_the_database() -> None:
    env = {k: v for k, v in PRODUCTION.items() if k != "DATABASE_URL"}
    env["CONSENT_DATABASE_URL"] = "postgresql://u@db/consent"

    assert Settings.from_env("consent", env).database_url == "postgresql://u@db/consent"


def test_half_a_production_environment_names_everything_missing() -> None:
    with pytest.raises(ConfigError) as caught:
        Settings.from_env("redaction", {"AMQP_URL": PRODUCTION["AMQP_URL"]})

    message = str(caught.value)
    for name in (
        "SAFEPOST_SECRET_KEY",
        "S3_ENDPOINT",
        "REDACTION_DATABASE_URL or DATABASE_URL",
    ):
        assert name in message
    assert "AMQP_URL," not in message


@pytest.mark.parametrize(
    "only", ["DATABASE_URL", "S3_ENDPOINT", "PUBLISHING_DATABASE_URL"]
)
def test_any_production_variable_switches_to_production(only: str) -> None:
    with pytest.raises(ConfigError, match="AMQP_URL"):
        Settings.from_env("publishing", {only: "x"})


def test_an_empty_production_variable_counts_as_missing() -> None:
    with pytest.raises(ConfigError, match="SAFEPOST_SECRET_KEY"):
        Settings.from_env("intake", {**PRODUCTION, "SAFEPOST_SECRET_KEY": ""})


def test_a_malformed_number_is_named() -> None:
    with pytest.raises(ConfigError, match="PREFETCH"):
        Settings.from_env("intake", {**PRODUCTION, "PREFETCH": "four"})
