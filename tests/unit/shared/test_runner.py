"""Every service declared once: the specs the worker processes and the embedded
runner read."""

from __future__ import annotations

import pytest

from safepost.embedded import SPECS
from shared import contracts
from shared.config import SERVICES, Settings


def test_every_service_has_one_spec_whose_handlers_match_what_it_declares(tmp_path):
    assert sorted(SPECS) == sorted(SERVICES)
    for spec in SPECS.values():
        lane_types = {t for types in spec.lanes.values() for t in types}
        assert lane_types <= set(spec.handles), spec.name  # a lane only routes
        assert all(issubclass(t, contracts.Message) for t in spec.handles)


def test_the_redaction_worker_takes_one_photo_at_a_time_unless_prefetch_says_so(
    tmp_path,
):
    env = {"SAFEPOST_DATA_DIR": str(tmp_path), "SAFEPOST_SECRET_KEY": "x"}
    spec = SPECS["redaction"]
    ports = spec.make_ports(Settings.from_env("redaction", env))

    default = spec.build_worker(Settings.from_env("redaction", env), ports)
    told = spec.build_worker(
        Settings.from_env("redaction", {**env, "PREFETCH": "3"}), ports
    )

    assert default is not None and told is not None
    assert (default.prefetch, told.prefetch) == (1, 3)
    assert default.lanes == {
        "decisions": sorted(
            t.routing_key() for t in (contracts.FacesDecided, contracts.ReviseRedaction)
        )
    }


def test_a_spec_whose_handlers_disagree_with_what_it_declares_is_refused(tmp_path):
    from dataclasses import replace

    env = {"SAFEPOST_DATA_DIR": str(tmp_path), "SAFEPOST_SECRET_KEY": "x"}
    spec = SPECS["approval"]
    settings = Settings.from_env("approval", env)
    wrong = replace(spec, handles=spec.handles[1:])

    with pytest.raises(RuntimeError, match="disagree"):
        wrong.build_worker(settings, spec.make_ports(settings))


def test_a_worker_waits_for_a_database_that_is_away_at_start_instead_of_exiting(
    tmp_path,
):
    import threading

    from sqlalchemy.exc import OperationalError

    from shared.runner import ServiceSpec, ports_when_ready

    tries: list[int] = []

    def make_ports(settings: Settings) -> str:
        tries.append(1)
        if len(tries) < 3:
            raise OperationalError("connect", {}, Exception("connection refused"))
        return "ports"

    spec = ServiceSpec(name="approval", make_ports=make_ports)
    settings = Settings.from_env("approval", {"SAFEPOST_DATA_DIR": str(tmp_path)})

    assert ports_when_ready(spec, settings, threading.Event()) == "ports"
    assert len(tries) == 3


def test_a_bad_setting_at_start_still_fails_at_once_and_a_stop_ends_the_wait(tmp_path):
    import threading

    from sqlalchemy.exc import OperationalError

    from shared.runner import ServiceSpec, ports_when_ready

    settings = Settings.from_env("approval", {"SAFEPOST_DATA_DIR": str(tmp_path)})

    def misconfigured(settings: Settings) -> str:
        raise ValueError("S3_ENDPOINT is not a URL")

    def away(settings: Settings) -> str:
        raise OperationalError("connect", {}, Exception("connection refused"))

    with pytest.raises(ValueError):
        ports_when_ready(
            ServiceSpec("approval", misconfigured), settings, threading.Event()
        )
    stop = threading.Event()
    stop.set()
    assert ports_when_ready(ServiceSpec("approval", away), settings, stop) is None
