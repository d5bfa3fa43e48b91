"""Intake's pages: the teacher's upload page, the device register for IT."""

from __future__ import annotations

from flask import render_template, request

from services.intake import views
from services.intake.api.common import APPROVERS, DEVICE_COOKIE, bp, ports
from shared import auth


@bp.get("/")
@auth.login_required("teacher")
def index() -> str:
    identity = auth.current_identity()
    schools = sorted(identity.schools("teacher"))
    device = views.identify(ports().register, request.cookies.get(DEVICE_COOKIE))
    return render_template("intake/index.html", schools=schools, device=device)


@bp.get("/devices")
@auth.login_required(*APPROVERS)
def devices_page() -> str:
    identity = auth.current_identity()
    schools = sorted(
        s for r in APPROVERS for s in identity.schools(r) if s != auth.TRUST_WIDE
    )
    return render_template(
        "intake/devices.html",
        schools=schools,
        trust_wide=auth.visible_schools(identity, *APPROVERS) is None,
        may_register=identity.has("it_auditor") or identity.has("admin"),
    )
