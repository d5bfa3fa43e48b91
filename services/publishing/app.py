"""Publishing's Flask app: ``create_app(ports, settings)``."""

from __future__ import annotations

from flask import Flask

from services.publishing import api, media_api, takedown_api
from services.publishing.bootstrap import SERVICE, Ports, ready_checks, real_ports
from shared import web
from shared.config import Settings


def create_app(ports: Ports | None = None, settings: Settings | None = None) -> Flask:
    settings = settings or Settings.from_env(SERVICE)
    ports = ports or real_ports(settings)
    app = web.service_app(
        SERVICE,
        api.bp,
        settings=settings,
        ports=ports,
        ready_checks=ready_checks(ports),
    )
    app.register_blueprint(media_api.bp)
    app.register_blueprint(takedown_api.bp)
    return app
