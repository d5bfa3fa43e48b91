"""Settings from the environment, validated at start-up.

Two shapes: *embedded* (nothing set: SQLite, a local data folder and kombu's
``memory://``) and *production* (``AMQP_URL``, ``DATABASE_URL``, S3 settings). A
production setting that is half given fails at start-up naming what is missing.
"""

from __future__ import annotations

import os
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path

from shared.errors import ConfigError

SERVICES = ("intake", "consent", "redaction", "approval", "publishing", "audit")
EMBEDDED_SECRET_FILE = "secret.key"
# Any of these (or <SERVICE>_DATABASE_URL) means production: then all must be given.
PRODUCTION_VARS = ("AMQP_URL", "DATABASE_URL", "S3_ENDPOINT")
MAX_UPLOAD_BYTES = 40 * 1024 * 1024


@dataclass(frozen=True)
class Settings:
    """Everything a service process needs; built once by the entrypoint."""

    service: str
    data_dir: Path
    amqp_url: str
    database_url: str
    secret_key: str
    s3_endpoint: str | None = None
    s3_region: str = "eu-west-2"
    s3_buckets: Mapping[str, str] = field(default_factory=dict)
    s3_access_key: str | None = None
    s3_secret_key: str | None = None
    s3_sse: str | None = "AES256"
    prefetch: int | None = None  # PREFETCH; None: the service's own default
    log_level: str = "INFO"
    embedded: bool = True
    max_upload_bytes: int = MAX_UPLOAD_BYTES
    publish_root: Path | None = None
    secure_cookies: bool = False
    # Fernet keys for the platform tokens at rest, comma-separated, newest first.
    token_keys: str = ""
    # Where the system is reached (links in pages; Instagram fetches images from it).
    public_url: str = "http://127.0.0.1:8000"
    # The platforms' app credentials, API bases and versions, as given in the
    # environment (FACEBOOK_APP_ID, X_CLIENT_ID, LINKEDIN_API_VERSION, GRAPH_API_BASE,
    # ...): only publishing reads them.
    platform_env: Mapping[str, str] = field(default_factory=dict)
    # The trust's choice for live posts when a pupil leaves or consent expires:
    # take them down (1), or keep what was published while consent was valid (0).
    take_down_on_leaving: bool = False
    take_down_on_expiry: bool = False

    @property
    def uses_s3(self) -> bool:
        return self.s3_endpoint is not None or bool(self.s3_buckets)

    @classmethod
    def from_env(cls, service: str, env: Mapping[str, str] | None = None) -> Settings:
        """Read and validate settings; ConfigError names every missing variable."""
        env = os.environ if env is None else env
        data_dir = Path(env.get("SAFEPOST_DATA_DIR", "./var")).resolve()
        db_var = f"{service.upper()}_DATABASE_URL"
        production = any(k in env for k in (*PRODUCTION_VARS, db_var))
        if production:
            return cls._production(service, env, data_dir)
        return cls(
            service=service,
            data_dir=data_dir,
            amqp_url="memory://",
            database_url=f"sqlite:///{data_dir / 'db' / f'{service}.sqlite3'}",
            secret_key=env.get("SAFEPOST_SECRET_KEY") or _embedded_secret(data_dir),
            log_level=env.get("LOG_LEVEL", "INFO"),
            prefetch=_int(env, "PREFETCH", 0) if env.get("PREFETCH") else None,
            embedded=True,
            max_upload_bytes=_int(env, "MAX_UPLOAD_BYTES", MAX_UPLOAD_BYTES),
            publish_root=Path(env.get("PUBLISH_ROOT", str(data_dir / "published"))),
            token_keys=env.get("SAFEPOST_TOKEN_KEYS")
            or (_embedded_token_key(data_dir) if service == "publishing" else ""),
            take_down_on_leaving=_flag(env, "TAKE_DOWN_ON_LEAVING"),
            take_down_on_expiry=_flag(env, "TAKE_DOWN_ON_EXPIRY"),
            public_url=env.get("PUBLIC_URL", "http://127.0.0.1:8000").rstrip("/"),
            platform_env=_platform_env(env),
        )

    @classmethod
    def _production(
        cls, service: str, env: Mapping[str, str], data_dir: Path
    ) -> Settings:
        db_var = f"{service.upper()}_DATABASE_URL"
        required = ["AMQP_URL", "SAFEPOST_SECRET_KEY", "S3_ENDPOINT"]
        if service == "publishing":
            required += ["SAFEPOST_TOKEN_KEYS", "PUBLIC_URL"]
        missing = [k for k in required if not env.get(k)]
        if not (env.get(db_var) or env.get("DATABASE_URL")):
            missing.append(f"{db_var} or DATABASE_URL")
        if missing:
            raise ConfigError("missing settings: " + ", ".join(missing))
        prefix = env.get("S3_BUCKET_PREFIX", "safepost")
        buckets = {a: env.get(f"S3_BUCKET_{a.upper()}", f"{prefix}-{a}") for a in AREAS}
        return cls(
            service=service,
            data_dir=data_dir,
            amqp_url=env["AMQP_URL"],
            database_url=env.get(db_var) or env["DATABASE_URL"],
            secret_key=env["SAFEPOST_SECRET_KEY"],
            s3_endpoint=env["S3_ENDPOINT"],
            s3_region=env.get("S3_REGION", "eu-west-2"),
            s3_buckets=buckets,
            s3_access_key=env.get("S3_ACCESS_KEY"),
            s3_secret_key=env.get("S3_SECRET_KEY"),
            s3_sse=env.get("S3_SSE", "AES256") or None,
            prefetch=_int(env, "PREFETCH", 0) if env.get("PREFETCH") else None,
            log_level=env.get("LOG_LEVEL", "INFO"),
            embedded=False,
            max_upload_bytes=_int(env, "MAX_UPLOAD_BYTES", MAX_UPLOAD_BYTES),
            publish_root=Path(env["PUBLISH_ROOT"]) if env.get("PUBLISH_ROOT") else None,
            secure_cookies=env.get("SECURE_COOKIES", "1") != "0",
            token_keys=env.get("SAFEPOST_TOKEN_KEYS", ""),
            public_url=env.get("PUBLIC_URL", "").rstrip("/"),
            take_down_on_leaving=_flag(env, "TAKE_DOWN_ON_LEAVING"),
            take_down_on_expiry=_flag(env, "TAKE_DOWN_ON_EXPIRY"),
            platform_env=_platform_env(env),
        )


AREAS = ("originals", "redacted", "previews")


def _flag(env: Mapping[str, str], name: str) -> bool:
    value = env.get(name, "0").strip().lower()
    if value not in ("0", "1", "true", "false", "yes", "no", ""):
        raise ConfigError(f"{name} must be 1 (take down) or 0 (keep)")
    return value in ("1", "true", "yes")


def _int(env: Mapping[str, str], name: str, default: int) -> int:
    try:
        value = int(env.get(name, default))
    except ValueError:
        raise ConfigError(f"{name} must be a whole number") from None
    if value < 1:
        raise ConfigError(f"{name} must be at least 1")
    return value


PLATFORM_PREFIXES = ("FACEBOOK_", "GRAPH_", "INSTAGRAM_", "X_", "LINKEDIN_", "PUBLISH_")


def _platform_env(env: Mapping[str, str]) -> dict[str, str]:
    return {k: v for k, v in env.items() if k.startswith(PLATFORM_PREFIXES)}


def _embedded_token_key(data_dir: Path) -> str:
    """A per-installation Fernet key for the tokens at rest (``token.key``, 0600)."""
    import base64
    import secrets

    path = data_dir / "token.key"
    if not path.exists():
        data_dir.mkdir(parents=True, exist_ok=True)
        key = base64.urlsafe_b64encode(secrets.token_bytes(32)).decode()
        tmp = data_dir / f".token.key.{secrets.token_hex(8)}"
        fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
        with os.fdopen(fd, "w") as fh:
            fh.write(key)
            fh.flush()
            os.fsync(fh.fileno())
        try:
            os.link(tmp, path)
        except FileExistsError:
            pass
        finally:
            tmp.unlink()
    return path.read_text().strip()


def _embedded_secret(data_dir: Path) -> str:
    """A per-installation random key kept in the data folder (never a default).

    Made once, 0600, and published with a hard link so that two processes starting
    together agree on one key (the loser reads the winner's).
    """
    import secrets

    path = data_dir / EMBEDDED_SECRET_FILE
    if not path.exists():
        data_dir.mkdir(parents=True, exist_ok=True)
        tmp = data_dir / f".{EMBEDDED_SECRET_FILE}.{secrets.token_hex(8)}"
        fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
        with os.fdopen(fd, "w") as fh:
            fh.write(secrets.token_urlsafe(48))
            fh.flush()
            os.fsync(fh.fileno())
        try:
            os.link(tmp, path)
        except FileExistsError:
            pass
        finally:
            tmp.unlink()
    key = path.read_text().strip()
    if len(key) < 32:
        raise ConfigError(f"{path} holds no usable secret key; delete it to make one")
    return key
