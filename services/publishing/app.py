"""Publishing's Flask app: ``create_app(ports, settings)``."""

from __future__ import annotations

from flask import Flask

from services.publishing import media_api, pages, takedown_api
from services.publishing.bootstrap import SERVICE, Ports, ready_checks, real_ports
from shared import web
from shared.config import Settings


def create_app(ports: Ports | None = None, settings: Settings | None = None) -> Flask:
    settings = settings or Settings.from_env(SERVICE)
    ports = ports or real_ports(settings)
    app = web.service_app(
        SERVICE,
        pages.bp,  # the JSON API's blueprint, with the pages on it
        settings=settings,
        ports=ports,
        ready_checks=ready_checks(ports),
    )
    app.register_blueprint(media_api.bp)
    app.register_blueprint(takedown_api.bp)
    return app
