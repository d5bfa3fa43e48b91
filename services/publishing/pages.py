"""Publishing's pages, on the ``publishing`` blueprint of ``api``: the deliveries,
a school's accounts for its admins (add, edit, connect, a webhook's secret), the OAuth
callback, and the trust's register of approved sites.

Pages are server-rendered forms (POST, CSRF token in a hidden field, then a 303 back
to the page); every page shows a banner while an account of the person's schools
needs reconnecting. Every view requires a role, then checks it for the school the
resource belongs to (``auth.require_role``).
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from flask import Response, g, redirect, render_template, request
from flask import url_for as flask_url_for

from services.publishing import admin, connect, domain, sites
from services.publishing.api import (
    REGISTER,
    STAFF,
    bp,
    register_keeper,
    school_account,
)
from shared import auth, web
from shared.errors import DomainError, ForbiddenError

__all__ = ["bp"]  # publishing's blueprint, its pages registered
NOTICES = {
    "added": "Account {account} added.",
    "exists": "Account {account} was already there: nothing changed.",
    "saved": "Account {account} saved.",
    "connected": "Account {account} is connected.",
    "approved": "{platform} is approved.",
    "withdrawn": "{platform} is withdrawn: its accounts' posts wait until it is "
    "approved again.",
}


@bp.context_processor
def _page_helpers() -> dict[str, Any]:
    return {
        "reconnect_banner": _needing_reconnect,
        "platform_name": sites.name,
        "status_words": admin.status_in_words,
    }


def _needing_reconnect() -> list[domain.Account]:
    """Accounts of the person's schools that need (re)connecting, for the banner."""
    identity: auth.Identity | None = g.get("identity")
    if identity is None:
        return []
    accounts = web.ports().accounts
    schools = auth.visible_schools(identity, *auth.ROLES)
    found = (
        accounts.all()
        if schools is None
        else [a for s in sorted(schools) for a in accounts.for_school(s)]
    )
    return [a for a in found if a.enabled and a.connection == domain.NEEDS_RECONNECT]


@bp.get("/")
@auth.login_required(*STAFF)
def index() -> str:
    identity = auth.current_identity()
    found = web.ports().deliveries.recent(
        schools=auth.visible_schools(identity, *STAFF)
    )
    return render_template("publishing/index.html", deliveries=found)


@bp.get("/accounts")
@auth.login_required("admin")
def accounts_page() -> Any:
    """A school's accounts for its admins: status, token expiry, connect, edit."""
    identity = auth.current_identity()
    school = request.args.get("school", "")
    if not school:
        return _choose_school(identity)
    auth.require_role(identity, school, "admin")
    return _accounts_page(school, notice=_notice())


@bp.post("/accounts")
@auth.login_required("admin")
def add_account_form() -> Any:
    identity = auth.current_identity()
    form = request.form
    school = form.get("school", "")
    auth.require_role(identity, school, "admin")
    account_id = form.get("account_id", "").strip()
    kind = form.get("kind", "")
    try:
        added = admin.add_account(
            web.ports(),
            school,
            account_id,
            kind,
            form.get("name", ""),
            _form_config(form),
            form.get("enabled") == "on",
            external_id=form.get("external_id", ""),
            owner=form.get("owner", ""),
            footer=form.get("footer", ""),
            by=identity,
        )
    except DomainError as exc:
        _reraise_forbidden(exc)
        return _accounts_page(
            school, error=exc.message, draft=form.to_dict(), status=exc.status
        )
    done = "added" if added else "exists"
    return _back(school, done=done, account=account_id)


@bp.post("/accounts/<account_id>")
@auth.login_required("admin")
def edit_account_form(account_id: str) -> Any:
    identity = auth.current_identity()
    account = school_account(account_id, identity)
    form = request.form
    changes: dict[str, Any] = {
        "name": form.get("name", ""),
        "owner": form.get("owner", ""),
        "footer": form.get("footer", ""),
        "enabled": form.get("enabled") == "on",
    }
    if account.kind != "folder":
        changes["external_id"] = form.get("external_id", "")
    if account.kind not in domain.SOCIAL:
        changes["config"] = _form_config(form)
    try:
        admin.update_account(web.ports(), account_id, changes, by=identity)
    except DomainError as exc:
        _reraise_forbidden(exc)
        return _accounts_page(account.school_id, error=exc.message, status=exc.status)
    return _back(account.school_id, done="saved", account=account_id)


@bp.post("/accounts/<account_id>/connect")
@auth.login_required("admin")
def connect_form(account_id: str) -> Any:
    """Off to the platform to sign in and grant access; it comes back to the
    callback below."""
    identity = auth.current_identity()
    account = school_account(account_id, identity)
    try:
        url = connect.start(web.ports(), account_id, identity)
    except DomainError as exc:
        _reraise_forbidden(exc)
        return _accounts_page(account.school_id, error=exc.message, status=exc.status)
    return redirect(url, 303)


@bp.post("/accounts/<account_id>/secret")
@auth.login_required("admin")
def secret_form(account_id: str) -> Any:
    identity = auth.current_identity()
    account = school_account(account_id, identity)
    try:
        secret = connect.new_webhook_secret(web.ports(), account_id, identity)
    except DomainError as exc:
        _reraise_forbidden(exc)
        return _accounts_page(account.school_id, error=exc.message, status=exc.status)
    html, status = _accounts_page(account.school_id, secret=(account_id, secret))
    response = Response(html, status, mimetype="text/html")
    response.headers["Cache-Control"] = "no-store"
    return response


@bp.get("/oauth/callback")
@auth.login_required("admin")
def oauth_callback() -> Any:
    """Where a platform sends the admin back, with ``code`` and ``state`` (or
    ``error`` when they declined)."""
    identity = auth.current_identity()
    args = request.args
    state = args.get("state", "")
    if args.get("error"):
        account = connect.abandon(web.ports(), state, identity)
        said = args.get("error_description") or args.get("error", "")
        message = f"The account was not connected: the platform said {said!r}."
        if account is not None:
            return _accounts_page(account.school_id, error=message, status=400)
        return _problem("Not connected", message, 400)
    try:
        account = connect.finish(web.ports(), state, args.get("code", ""), identity)
    except DomainError as exc:
        return _problem("Not connected", exc.message, exc.status)
    return _back(account.school_id, done="connected", account=account.account_id)


@bp.get("/sites")
@auth.login_required(*REGISTER)
def sites_page() -> Any:
    """The trust's register of approved sites; IT approves and withdraws here."""
    return _sites_page(notice=_notice())


@bp.post("/sites/<platform>/approve")
@auth.login_required(*REGISTER)
def approve_form(platform: str) -> Any:
    identity = register_keeper()
    answers = {key: request.form.get(key, "") for key, _ in sites.CHECKLIST}
    try:
        sites.approve(web.ports(), platform, answers, identity.username)
    except DomainError as exc:
        drafts = {platform: answers}
        return _sites_page(error=exc.message, drafts=drafts, status=exc.status)
    return redirect(
        _url("publishing.sites_page", done="approved", platform=platform), 303
    )


@bp.post("/sites/<platform>/withdraw")
@auth.login_required(*REGISTER)
def withdraw_form(platform: str) -> Any:
    identity = register_keeper()
    try:
        sites.withdraw(
            web.ports(), platform, identity.username, request.form.get("note", "")
        )
    except DomainError as exc:
        return _sites_page(error=exc.message, status=exc.status)
    return redirect(
        _url("publishing.sites_page", done="withdrawn", platform=platform), 303
    )


# -- page helpers -------------------------------------------------------------------


def _accounts_page(
    school: str,
    *,
    notice: str = "",
    error: str = "",
    draft: Mapping[str, str] | None = None,
    secret: tuple[str, str] | None = None,
    status: int = 200,
) -> tuple[str, int]:
    ports = web.ports()
    now = ports.now()
    accounts = ports.accounts.for_school(school)
    approved = {p: sites.is_approved(ports, p) for p in domain.KINDS}
    rows = [
        {
            "a": a,
            "expiry": admin.expiry_in_words(a.token_expires_at, now),
            "site_ok": approved[a.kind],
        }
        for a in accounts
    ]
    html = render_template(
        "publishing/accounts.html",
        school=school,
        rows=rows,
        kinds=domain.KINDS,
        approved=approved,
        purposes=domain.PURPOSES,
        social=domain.SOCIAL,
        oauth=connect.OAUTH_PLATFORMS,
        help=admin.EXTERNAL_ID_HELP,
        max_footer=admin.MAX_FOOTER,
        notice=notice,
        error=error,
        draft=draft or {"enabled": "on"},
        secret=secret,
    )
    return html, status


def _sites_page(
    *,
    notice: str = "",
    error: str = "",
    drafts: Mapping[str, Mapping[str, str]] | None = None,
    status: int = 200,
) -> tuple[str, int]:
    identity = auth.current_identity()
    html = render_template(
        "publishing/sites.html",
        entries=sites.register(web.ports()),
        checklist=sites.CHECKLIST,
        may_change=sites.may_change(identity),
        notice=notice,
        error=error,
        drafts=drafts or {},
    )
    return html, status


def _choose_school(identity: auth.Identity) -> Any:
    mine = identity.schools("admin")
    if auth.TRUST_WIDE in mine:
        schools = sorted({a.school_id for a in web.ports().accounts.all()})
    elif len(mine) == 1:
        return redirect(_url("publishing.accounts_page", school=next(iter(mine))), 303)
    else:
        schools = sorted(mine)
    trust_wide = auth.TRUST_WIDE in mine
    return render_template(
        "publishing/schools.html", schools=schools, trust_wide=trust_wide
    )


def _problem(title: str, message: str, status: int) -> tuple[str, int]:
    html = render_template("publishing/problem.html", title=title, message=message)
    return html, status


def _form_config(form: Mapping[str, str]) -> dict[str, str]:
    keys = ("purpose", "consent_platform")
    return {k: form[k] for k in keys if form.get(k)}


def _notice() -> str:
    template = NOTICES.get(request.args.get("done", ""), "")
    account = request.args.get("account", "")
    platform = request.args.get("platform", "")
    if not template or (account and not domain.ACCOUNT_ID.match(account)):
        return ""
    return template.format(account=account, platform=sites.name(platform))


def _back(school: str, **args: str) -> Any:
    return redirect(_url("publishing.accounts_page", school=school, **args), 303)


def _url(endpoint: str, **values: Any) -> str:
    return flask_url_for(endpoint, **values)


def _reraise_forbidden(exc: DomainError) -> None:
    """A refusal of the role is never rendered as a form problem."""
    if isinstance(exc, ForbiddenError):
        raise exc
