"""Intake's Flask app: ``create_app(ports, settings)``."""

from __future__ import annotations

from flask import Flask

from services.intake import api
from services.intake.bootstrap import SERVICE, Ports, ready_checks, real_ports
from services.intake.domain import MAX_PHOTOS
from shared import web
from shared.config import Settings

FORM_OVERHEAD = 1024 * 1024  # the caption and other fields around the files


def create_app(ports: Ports | None = None, settings: Settings | None = None) -> Flask:
    settings = settings or Settings.from_env(SERVICE)
    ports = ports or real_ports(settings)
    return web.service_app(
        SERVICE,
        api.bp,
        settings=settings,
        ports=ports,
        ready_checks=ready_checks(ports),
        max_content_length=ports.max_upload_bytes * MAX_PHOTOS + FORM_OVERHEAD,
    )
