"""Publishing's adapters: SQL accounts and delivery markers, the folder target."""

from __future__ import annotations

from collections.abc import Callable, Sequence
from datetime import datetime, timedelta
from typing import Any

import sqlalchemy as sa
from sqlalchemy.engine import Connection, Engine
from sqlalchemy.exc import IntegrityError

from services.publishing import domain
from services.publishing.ports import Approval
from shared import contracts
from shared.db import (
    UtcDateTime,
    outbox_claim,
    outbox_mark_sent,
    outbox_pending,
    outbox_row,
    outbox_table,
    utcnow,
)

metadata = sa.MetaData()

accounts = sa.Table(
    "accounts",
    metadata,
    sa.Column("account_id", sa.String(64), primary_key=True),
    sa.Column("school_id", sa.String(40), nullable=False, index=True),
    sa.Column("kind", sa.String(20), nullable=False),
    sa.Column("name", sa.String(200), nullable=False),
    sa.Column("config", sa.JSON, nullable=False),
    sa.Column("enabled", sa.Boolean, nullable=False),
    sa.Column("created_at", UtcDateTime, nullable=False),
    # 0003
    sa.Column("external_id", sa.String(300), nullable=False, server_default=""),
    sa.Column("owner", sa.String(64), nullable=False, server_default=""),
    sa.Column("footer", sa.Text, nullable=False, server_default=""),
    sa.Column("connection", sa.String(20), nullable=False, server_default="active"),
    sa.Column("status_reason", sa.Text, nullable=False, server_default=""),
    sa.Column("token_expires_at", UtcDateTime, nullable=True),
    sa.Column("api_base", sa.String(300), nullable=False, server_default=""),
    sa.Column("token", sa.Text, nullable=True),
    sa.Column("refreshing_until", UtcDateTime, nullable=True),
    sa.Column("connected_by", sa.String(64), nullable=True),
    sa.Column("connected_at", UtcDateTime, nullable=True),
)

approved_sites = sa.Table(
    "approved_sites",
    metadata,
    sa.Column("platform", sa.String(20), primary_key=True),
    sa.Column("approved", sa.Boolean, nullable=False),
    sa.Column("answers", sa.JSON, nullable=False),
    sa.Column("approved_by", sa.String(64), nullable=True),
    sa.Column("approved_at", UtcDateTime, nullable=True),
    sa.Column("withdrawn_by", sa.String(64), nullable=True),
    sa.Column("withdrawn_at", UtcDateTime, nullable=True),
    sa.Column("note", sa.Text, nullable=False, server_default=""),
)

oauth_states = sa.Table(
    "oauth_states",
    metadata,
    sa.Column("state", sa.String(100), primary_key=True),
    sa.Column("account_id", sa.String(64), nullable=False),
    sa.Column("user", sa.String(64), nullable=False),
    sa.Column("code_verifier", sa.Text, nullable=True),
    sa.Column("created_at", UtcDateTime, nullable=False),
)

deliveries = sa.Table(
    "deliveries",
    metadata,
    sa.Column("post_id", sa.String(36), primary_key=True),
    sa.Column("account_id", sa.String(200), primary_key=True),
    sa.Column("school_id", sa.String(40), nullable=False, index=True),
    sa.Column("status", sa.String(20), nullable=False),
    sa.Column("target", sa.String(20), nullable=False),
    sa.Column("location", sa.Text, nullable=False),
    sa.Column("reason", sa.String(200), nullable=False),
    sa.Column("at", UtcDateTime, nullable=False, index=True),
    # 0003
    sa.Column("round", sa.Integer, nullable=False, server_default="1"),
    sa.Column("attempts", sa.Integer, nullable=False, server_default="0"),
    sa.Column("next_attempt_at", UtcDateTime, nullable=True),
    sa.Column("external_id", sa.String(300), nullable=False, server_default=""),
    sa.Column("url", sa.String(1000), nullable=False, server_default=""),
    sa.Column("detail", sa.Text, nullable=False, server_default=""),
    sa.Column("sending_since", UtcDateTime, nullable=True),
    sa.Column("live_at", UtcDateTime, nullable=True),
    sa.Index("ix_deliveries_due", "status", "next_attempt_at"),
    # 0004
    sa.Column("takedown_id", sa.String(36), nullable=True),
    sa.Column("taken_down_at", UtcDateTime, nullable=True),
    sa.Index("ix_deliveries_takedown", "takedown_id"),
)

shown_pupils = sa.Table(
    "shown_pupils",
    metadata,
    sa.Column("post_id", sa.String(36), primary_key=True),
    sa.Column("round", sa.Integer, primary_key=True, autoincrement=False),
    sa.Column("pupil_id", sa.String(64), primary_key=True),
    sa.Column("school_id", sa.String(40), nullable=False),
    sa.Index("ix_publishing_shown_pupil", "school_id", "pupil_id"),
)

takedowns = sa.Table(
    "takedowns",
    metadata,
    sa.Column("takedown_id", sa.String(36), primary_key=True),
    sa.Column("school_id", sa.String(40), nullable=False, index=True),
    sa.Column("pupil_id", sa.String(64), nullable=True, index=True),
    sa.Column("reason", sa.String(40), nullable=False),
    sa.Column("detail", sa.Text, nullable=False, server_default=""),
    sa.Column("by", sa.String(64), nullable=True),
    sa.Column("changed_at", UtcDateTime, nullable=True),
    sa.Column("requested_at", UtcDateTime, nullable=False),
    sa.Column("completed_at", UtcDateTime, nullable=True),
)

manual_takedowns = sa.Table(
    "manual_takedowns",
    metadata,
    sa.Column("post_id", sa.String(36), primary_key=True),
    sa.Column("account_id", sa.String(64), primary_key=True),
    sa.Column("school_id", sa.String(40), nullable=False, index=True),
    sa.Column("owner", sa.String(64), nullable=False, server_default=""),
    sa.Column("url", sa.String(1000), nullable=False, server_default=""),
    sa.Column("reason", sa.Text, nullable=False),
    sa.Column("opened_at", UtcDateTime, nullable=False),
    sa.Column("escalated_at", UtcDateTime, nullable=True),
    sa.Column("closed_at", UtcDateTime, nullable=True),
    sa.Column("closed_by", sa.String(64), nullable=True),
    sa.Column("confirmation", sa.Text, nullable=False, server_default=""),
)


approval_rounds = sa.Table(
    "approval_rounds",
    metadata,
    sa.Column("post_id", sa.String(36), primary_key=True),
    sa.Column("round", sa.Integer, primary_key=True, autoincrement=False),
    sa.Column("school_id", sa.String(40), nullable=False, index=True),
    sa.Column("state", sa.String(20), nullable=False),
    sa.Column("event", sa.JSON, nullable=True),
    sa.Column("updated_at", UtcDateTime, nullable=False),
)

outbox = outbox_table(metadata)

SERVICE = "publishing"


def account_changed(account: domain.Account) -> contracts.AccountChanged:
    return contracts.AccountChanged(
        account_id=account.account_id,
        school_id=account.school_id,
        platform=account.kind,
        purpose=account.purpose,
        consent_platform=account.consent_platform,
        status=account.status,
    )


class SqlAccountDirectory:
    """Accounts; every change writes ``account.changed`` to the outbox in the same
    transaction (Announcements), so consent's copy never misses one."""

    def __init__(self, engine: Engine):
        self.engine = engine

    def get(self, account_id: str) -> domain.Account | None:
        query = accounts.select().where(accounts.c.account_id == account_id)
        with self.engine.connect() as conn:
            row = conn.execute(query).first()
        return _account(row._mapping) if row else None

    def for_school(self, school_id: str) -> list[domain.Account]:
        query = (
            accounts.select()
            .where(accounts.c.school_id == school_id)
            .order_by(accounts.c.account_id)
        )
        with self.engine.connect() as conn:
            return [_account(r._mapping) for r in conn.execute(query)]

    def add(self, account: domain.Account) -> bool:
        try:
            with self.engine.begin() as conn:
                conn.execute(
                    accounts.insert().values(
                        account_id=account.account_id,
                        created_at=utcnow(),
                        **_account_values(account),
                    )
                )
                _emit(conn, account_changed(account))
        except IntegrityError:
            return False  # already there (maybe added concurrently): nothing to do
        return True

    def announce(self, account: domain.Account) -> None:
        with self.engine.begin() as conn:
            _emit(conn, account_changed(account))

    def update(self, account: domain.Account) -> None:
        """Store the account's new settings and announce them, in one transaction."""
        with self.engine.begin() as conn:
            conn.execute(
                accounts.update()
                .where(accounts.c.account_id == account.account_id)
                .values(**_account_values(account))
            )
            _emit(conn, account_changed(account))

    def all(self) -> list[domain.Account]:
        with self.engine.connect() as conn:
            rows = conn.execute(accounts.select().order_by(accounts.c.account_id))
            return [_account(r._mapping) for r in rows]

    # Outbox (shared.outbox.Outbox).

    def pending(self, limit: int = 100) -> list[contracts.Envelope]:
        envelopes: list[contracts.Envelope] = outbox_pending(self.engine, outbox, limit)
        return envelopes

    def mark_sent(self, envelope_ids: Sequence[str]) -> None:
        outbox_mark_sent(self.engine, outbox, envelope_ids, utcnow())

    def claim(
        self,
        publish: Callable[[contracts.Envelope], bool],
        limit: int = 100,
        only: Sequence[str] | None = None,
    ) -> tuple[int, bool]:
        return outbox_claim(self.engine, outbox, publish, limit, utcnow, only)


def _emit(conn: Connection, message: contracts.Message) -> None:
    envelope = contracts.seal(message, producer=SERVICE)
    conn.execute(outbox.insert().values(outbox_row(envelope, utcnow())))


class SqlApprovals:
    """Approval rounds kept until consent clears them (Approvals port)."""

    def __init__(self, engine: Engine):
        self.engine = engine

    def open(self, event: contracts.PostApproved) -> Approval:
        key = (
            approval_rounds.c.post_id == event.post_id,
            approval_rounds.c.round == event.round,
        )
        with self.engine.begin() as conn:
            row = conn.execute(approval_rounds.select().where(*key)).first()
            if row is None:
                try:
                    with conn.begin_nested():
                        conn.execute(
                            approval_rounds.insert().values(
                                post_id=event.post_id,
                                round=event.round,
                                school_id=event.school_id,
                                state=domain.VERIFYING,
                                event=event.model_dump(mode="json"),
                                updated_at=utcnow(),
                            )
                        )
                except IntegrityError:
                    pass  # opened concurrently: read it below
            elif row.event is None:  # recalled before it arrived: keep the event
                conn.execute(
                    approval_rounds.update()
                    .where(*key)
                    .values(event=event.model_dump(mode="json"))
                )
            row = conn.execute(approval_rounds.select().where(*key)).one()
        return _approval(row._mapping)

    def get(self, post_id: str, round_: int) -> Approval | None:
        query = approval_rounds.select().where(
            approval_rounds.c.post_id == post_id, approval_rounds.c.round == round_
        )
        with self.engine.connect() as conn:
            row = conn.execute(query).first()
        return _approval(row._mapping) if row else None

    def newest_round(self, post_id: str) -> int:
        query = sa.select(sa.func.max(approval_rounds.c.round)).where(
            approval_rounds.c.post_id == post_id
        )
        with self.engine.connect() as conn:
            return int(conn.execute(query).scalar() or 0)

    def settle(self, post_id: str, round_: int, state: str, school_id: str) -> None:
        key = (
            approval_rounds.c.post_id == post_id,
            approval_rounds.c.round == round_,
        )
        with self.engine.begin() as conn:
            done = conn.execute(
                approval_rounds.update()
                .where(*key)
                .values(state=state, updated_at=utcnow())
            ).rowcount
            if not done:
                conn.execute(
                    approval_rounds.insert().values(
                        post_id=post_id,
                        round=round_,
                        school_id=school_id,
                        state=state,
                        event=None,
                        updated_at=utcnow(),
                    )
                )


def _approval(row: Any) -> Approval:
    event = row["event"]
    return Approval(
        post_id=row["post_id"],
        round=row["round"],
        school_id=row["school_id"],
        state=row["state"],
        event=contracts.PostApproved.model_validate(event) if event else None,
        updated_at=row["updated_at"],
    )


class SqlDeliveryLog:
    def __init__(self, engine: Engine):
        self.engine = engine

    def get(self, post_id: str, account_id: str) -> domain.Delivery | None:
        query = deliveries.select().where(
            deliveries.c.post_id == post_id, deliveries.c.account_id == account_id
        )
        with self.engine.connect() as conn:
            row = conn.execute(query).first()
        return _delivery(row._mapping) if row else None

    def record(self, delivery: domain.Delivery) -> None:
        values = _delivery_values(delivery)
        key = (
            deliveries.c.post_id == delivery.post_id,
            deliveries.c.account_id == delivery.account_id,
        )
        with self.engine.begin() as conn:
            if conn.execute(deliveries.update().where(*key).values(**values)).rowcount:
                return
            conn.execute(
                deliveries.insert().values(
                    post_id=delivery.post_id, account_id=delivery.account_id, **values
                )
            )

    def due(
        self, now: datetime, lease: timedelta, limit: int = 50
    ) -> list[domain.Delivery]:
        c = deliveries.c
        query = (
            deliveries.select()
            .where(
                sa.or_(
                    sa.and_(c.status.in_(domain.DUE), c.next_attempt_at <= now),
                    sa.and_(c.status == domain.SENDING, c.sending_since < now - lease),
                )
            )
            .order_by(
                # Lost answers first (a burst of new sends must not push the search
                # for them out of the platform's recent posts), then takedowns.
                sa.case(
                    (c.status.in_((domain.RECONCILING, domain.SENDING)), 0),
                    (c.status.in_((domain.TAKING_DOWN, domain.TAKEDOWN_FAILED)), 1),
                    else_=2,
                ),
                c.next_attempt_at,
                c.post_id,
                c.account_id,
            )
            .limit(limit)
        )
        with self.engine.connect() as conn:
            return [_delivery(r._mapping) for r in conn.execute(query)]

    def claim(self, expected: domain.Delivery, claimed: domain.Delivery) -> bool:
        c = deliveries.c
        with self.engine.begin() as conn:
            return bool(
                conn.execute(
                    deliveries.update()
                    .where(
                        c.post_id == expected.post_id,
                        c.account_id == expected.account_id,
                        c.status == expected.status,
                        c.attempts == expected.attempts,
                        c.at == expected.at,
                    )
                    .values(**_delivery_values(claimed))
                ).rowcount
            )

    def for_post(self, post_id: str) -> list[domain.Delivery]:
        query = deliveries.select().where(deliveries.c.post_id == post_id)
        with self.engine.connect() as conn:
            return [_delivery(r._mapping) for r in conn.execute(query)]

    def with_takedown(self, takedown_id: str) -> list[domain.Delivery]:
        query = deliveries.select().where(deliveries.c.takedown_id == takedown_id)
        with self.engine.connect() as conn:
            return [_delivery(r._mapping) for r in conn.execute(query)]

    def settle(
        self, delivery: domain.Delivery, messages: Sequence[contracts.Message]
    ) -> None:
        key = (
            deliveries.c.post_id == delivery.post_id,
            deliveries.c.account_id == delivery.account_id,
        )
        values = _delivery_values(delivery)
        with self.engine.begin() as conn:
            if not conn.execute(
                deliveries.update().where(*key).values(**values)
            ).rowcount:
                conn.execute(
                    deliveries.insert().values(
                        post_id=delivery.post_id,
                        account_id=delivery.account_id,
                        **values,
                    )
                )
            _emit_once(conn, delivery, messages)

    def recent(
        self,
        *,
        schools: set[str] | None = None,
        post_id: str | None = None,
        limit: int = 100,
    ) -> list[domain.Delivery]:
        query = deliveries.select().order_by(deliveries.c.at.desc()).limit(limit)
        if schools is not None:
            query = query.where(deliveries.c.school_id.in_(sorted(schools)))
        if post_id is not None:
            query = query.where(deliveries.c.post_id == post_id)
        with self.engine.connect() as conn:
            return [_delivery(r._mapping) for r in conn.execute(query)]


def _emit_once(
    conn: Connection, delivery: domain.Delivery, messages: Sequence[contracts.Message]
) -> None:
    """The messages a delivery's transition owes, with ids fixed by the transition
    (the same transition settled twice writes them once)."""
    for n, message in enumerate(messages):
        envelope_id = contracts.deterministic_id(
            SERVICE,
            message.TYPE,
            delivery.post_id,
            delivery.account_id,
            str(delivery.round),
            delivery.status,
            str(delivery.attempts),
            delivery.at.isoformat(),
            str(n),
        )
        if conn.execute(
            sa.select(outbox.c.envelope_id).where(outbox.c.envelope_id == envelope_id)
        ).first():
            continue
        envelope = contracts.seal(message, producer=SERVICE, message_id=envelope_id)
        conn.execute(outbox.insert().values(outbox_row(envelope, utcnow())))


def _delivery_values(delivery: domain.Delivery) -> dict[str, Any]:
    return {
        "school_id": delivery.school_id,
        "status": delivery.status,
        "target": delivery.target,
        "location": delivery.location,
        "reason": delivery.reason[:200],
        "at": delivery.at,
        "round": delivery.round,
        "attempts": delivery.attempts,
        "next_attempt_at": delivery.next_attempt_at,
        "external_id": delivery.external_id,
        "url": delivery.url,
        "detail": delivery.detail,
        "sending_since": delivery.sending_since,
        "live_at": delivery.live_at,
        "takedown_id": delivery.takedown_id,
        "taken_down_at": delivery.taken_down_at,
    }


class SqlSiteRegister:
    """The trust's register of approved sites (SiteRegister port)."""

    def __init__(self, engine: Engine):
        self.engine = engine

    def get(self, platform: str) -> domain.Site | None:
        query = approved_sites.select().where(approved_sites.c.platform == platform)
        with self.engine.connect() as conn:
            row = conn.execute(query).first()
        return _site(row._mapping) if row else None

    def all(self) -> list[domain.Site]:
        query = approved_sites.select().order_by(approved_sites.c.platform)
        with self.engine.connect() as conn:
            return [_site(r._mapping) for r in conn.execute(query)]

    def put(self, site: domain.Site, message: contracts.Message | None = None) -> None:
        """Insert or replace the entry; ``message`` (the change, for the trail) goes
        to the outbox in the same transaction."""
        values = {
            "approved": site.approved,
            "answers": dict(site.answers),
            "approved_by": site.approved_by,
            "approved_at": site.approved_at,
            "withdrawn_by": site.withdrawn_by,
            "withdrawn_at": site.withdrawn_at,
            "note": site.note,
        }
        key = approved_sites.c.platform == site.platform
        with self.engine.begin() as conn:
            if not conn.execute(
                approved_sites.update().where(key).values(**values)
            ).rowcount:
                conn.execute(
                    approved_sites.insert().values(platform=site.platform, **values)
                )
            if message is not None:
                _emit(conn, message)


def _site(row: Any) -> domain.Site:
    return domain.Site(
        platform=row["platform"],
        approved=bool(row["approved"]),
        answers=dict(row["answers"] or {}),
        approved_by=row["approved_by"],
        approved_at=row["approved_at"],
        withdrawn_by=row["withdrawn_by"],
        withdrawn_at=row["withdrawn_at"],
        note=row["note"] or "",
    )


class SqlTokens:
    """Accounts' tokens, encrypted at rest with the token vault (Tokens port).

    The ciphertext is bound to the account id (the vault's context), so a token copied
    onto another account's row does not open there."""

    def __init__(self, engine: Engine, vault: Any):
        self.engine = engine
        self.vault = vault

    def get(self, account_id: str) -> Any:
        query = sa.select(accounts.c.token).where(accounts.c.account_id == account_id)
        with self.engine.connect() as conn:
            sealed = conn.execute(query).scalar()
        return self.vault.open(sealed, context=account_id) if sealed else None

    def put(self, account_id: str, credentials: Any, *, by: str | None = None) -> None:
        sealed = self.vault.seal(credentials, context=account_id)
        with self.engine.begin() as conn:
            conn.execute(
                accounts.update()
                .where(accounts.c.account_id == account_id)
                .values(
                    token=sealed,
                    token_expires_at=credentials.expires_at,
                    connection=domain.ACTIVE,
                    status_reason="",
                    connected_by=by,
                    connected_at=utcnow(),
                )
            )

    def claim_refresh(self, account_id: str, now: datetime, seconds: int) -> bool:
        """A per-account lock for a token refresh (X's refresh tokens are single-use:
        two refreshes at once would lose the whole token family)."""
        until = now + timedelta(seconds=seconds)
        c = accounts.c
        with self.engine.begin() as conn:
            return bool(
                conn.execute(
                    accounts.update()
                    .where(
                        c.account_id == account_id,
                        sa.or_(c.refreshing_until.is_(None), c.refreshing_until < now),
                    )
                    .values(refreshing_until=until)
                ).rowcount
            )

    def release_refresh(self, account_id: str) -> None:
        with self.engine.begin() as conn:
            conn.execute(
                accounts.update()
                .where(accounts.c.account_id == account_id)
                .values(refreshing_until=None)
            )


def _account_values(account: domain.Account) -> dict[str, Any]:
    """The columns of an account's settings (never its token)."""
    return {
        "school_id": account.school_id,
        "kind": account.kind,
        "name": account.name,
        "config": dict(account.config),
        "enabled": account.enabled,
        "external_id": account.external_id,
        "owner": account.owner,
        "footer": account.footer,
        "connection": account.connection,
        "status_reason": account.status_reason,
        "token_expires_at": account.token_expires_at,
        "api_base": account.api_base,
    }


def _account(row: Any) -> domain.Account:
    return domain.Account(
        account_id=row["account_id"],
        school_id=row["school_id"],
        kind=row["kind"],
        name=row["name"],
        config=dict(row["config"]),
        enabled=bool(row["enabled"]),
        external_id=row["external_id"] or "",
        owner=row["owner"] or "",
        footer=row["footer"] or "",
        connection=row["connection"] or domain.ACTIVE,
        status_reason=row["status_reason"] or "",
        token_expires_at=row["token_expires_at"],
        api_base=row["api_base"] or "",
    )


def _delivery(row: Any) -> domain.Delivery:
    return domain.Delivery(
        post_id=row["post_id"],
        account_id=row["account_id"],
        school_id=row["school_id"],
        status=row["status"],
        at=row["at"],
        target=row["target"],
        location=row["location"],
        reason=row["reason"],
        round=row["round"] or 1,
        attempts=row["attempts"] or 0,
        next_attempt_at=row["next_attempt_at"],
        external_id=row["external_id"] or "",
        url=row["url"] or "",
        detail=row["detail"] or "",
        sending_since=row["sending_since"],
        live_at=row["live_at"],
        takedown_id=row["takedown_id"],
        taken_down_at=row["taken_down_at"],
    )


class SqlOAuthStates:
    """Pending OAuth authorisations (OAuthStates port). X's PKCE code verifier is
    sealed with the token vault, bound to its state, like the tokens themselves."""

    def __init__(self, engine: Engine, vault: Any):
        self.engine = engine
        self.vault = vault

    def put(self, pending: Any) -> None:
        from services.publishing.platforms.base import Credentials

        verifier = pending.code_verifier
        sealed = (
            self.vault.seal(Credentials(verifier), context=f"oauth:{pending.state}")
            if verifier
            else None
        )
        with self.engine.begin() as conn:
            conn.execute(
                oauth_states.insert().values(
                    state=pending.state,
                    account_id=pending.account_id,
                    user=pending.user,
                    code_verifier=sealed,
                    created_at=pending.created_at,
                )
            )

    def take(self, state: str) -> Any:
        from services.publishing.ports import OAuthState

        key = oauth_states.c.state == state
        with self.engine.begin() as conn:
            row = conn.execute(oauth_states.select().where(key)).first()
            # The delete decides who took it: a state is used once, by one caller.
            if (
                row is None
                or not conn.execute(oauth_states.delete().where(key)).rowcount
            ):
                return None
        sealed = row.code_verifier
        verifier = (
            self.vault.open(sealed, context=f"oauth:{state}").access_token
            if sealed
            else None
        )
        return OAuthState(
            state=row.state,
            account_id=row.account_id,
            user=row.user,
            created_at=row.created_at,
            code_verifier=verifier,
        )

    def purge(self, before: datetime) -> int:
        with self.engine.begin() as conn:
            return int(
                conn.execute(
                    oauth_states.delete().where(oauth_states.c.created_at < before)
                ).rowcount
            )


class SqlTakedowns:
    """Who each approved round shows, takedowns and manual takedown tasks."""

    def __init__(self, engine: Engine):
        self.engine = engine

    def show(
        self, post_id: str, round_: int, school_id: str, pupils: Sequence[str]
    ) -> None:
        rows = [
            {"post_id": post_id, "round": round_, "pupil_id": p, "school_id": school_id}
            for p in sorted(set(pupils))
        ]
        if not rows:
            return
        with self.engine.begin() as conn:
            known = {
                r.pupil_id
                for r in conn.execute(
                    sa.select(shown_pupils.c.pupil_id).where(
                        shown_pupils.c.post_id == post_id,
                        shown_pupils.c.round == round_,
                    )
                )
            }
            new = [r for r in rows if r["pupil_id"] not in known]
            if new:
                conn.execute(shown_pupils.insert(), new)

    def posts_showing(self, school_id: str, pupil_id: str) -> list[tuple[str, int]]:
        query = (
            sa.select(shown_pupils.c.post_id, shown_pupils.c.round)
            .where(
                shown_pupils.c.school_id == school_id,
                shown_pupils.c.pupil_id == pupil_id,
            )
            .order_by(shown_pupils.c.post_id, shown_pupils.c.round)
        )
        with self.engine.connect() as conn:
            return [(r.post_id, r.round) for r in conn.execute(query)]

    def open(self, takedown: domain.Takedown) -> bool:
        try:
            with self.engine.begin() as conn:
                conn.execute(
                    takedowns.insert().values(
                        takedown_id=takedown.takedown_id,
                        school_id=takedown.school_id,
                        pupil_id=takedown.pupil_id,
                        reason=takedown.reason,
                        detail=takedown.detail,
                        by=takedown.by,
                        changed_at=takedown.changed_at,
                        requested_at=takedown.requested_at,
                    )
                )
        except IntegrityError:
            return False
        return True

    def get(self, takedown_id: str) -> domain.Takedown | None:
        query = takedowns.select().where(takedowns.c.takedown_id == takedown_id)
        with self.engine.connect() as conn:
            row = conn.execute(query).first()
        return _takedown(row._mapping) if row else None

    def complete(
        self, takedown_id: str, at: datetime, message: contracts.Message
    ) -> bool:
        """Mark it complete with its message, once (True for the caller that did)."""
        with self.engine.begin() as conn:
            done = conn.execute(
                takedowns.update()
                .where(
                    takedowns.c.takedown_id == takedown_id,
                    takedowns.c.completed_at.is_(None),
                )
                .values(completed_at=at)
            ).rowcount
            if done:
                _emit(conn, message)
            return bool(done)

    def open_manual(self, task: domain.ManualTask, message: contracts.Message) -> None:
        key = (
            manual_takedowns.c.post_id == task.post_id,
            manual_takedowns.c.account_id == task.account_id,
        )
        values = {
            "school_id": task.school_id,
            "owner": task.owner,
            "url": task.url,
            "reason": task.reason,
            "opened_at": task.opened_at,
            "escalated_at": None,
            "closed_at": None,
            "closed_by": None,
            "confirmation": "",
        }
        with self.engine.begin() as conn:
            row = conn.execute(manual_takedowns.select().where(*key)).first()
            if row is not None and row.closed_at is None:
                return  # already open
            if row is None:
                conn.execute(
                    manual_takedowns.insert().values(
                        post_id=task.post_id, account_id=task.account_id, **values
                    )
                )
            else:
                conn.execute(manual_takedowns.update().where(*key).values(**values))
            _emit(conn, message)

    def manual(
        self, *, schools: set[str] | None = None, open_only: bool = True
    ) -> list[domain.ManualTask]:
        query = manual_takedowns.select().order_by(manual_takedowns.c.opened_at)
        if schools is not None:
            query = query.where(manual_takedowns.c.school_id.in_(sorted(schools)))
        if open_only:
            query = query.where(manual_takedowns.c.closed_at.is_(None))
        with self.engine.connect() as conn:
            return [_manual(r._mapping) for r in conn.execute(query)]

    def escalate(
        self, post_id: str, account_id: str, at: datetime, message: contracts.Message
    ) -> bool:
        with self.engine.begin() as conn:
            done = conn.execute(
                manual_takedowns.update()
                .where(
                    manual_takedowns.c.post_id == post_id,
                    manual_takedowns.c.account_id == account_id,
                    manual_takedowns.c.escalated_at.is_(None),
                    manual_takedowns.c.closed_at.is_(None),
                )
                .values(escalated_at=at)
            ).rowcount
            if done:
                _emit(conn, message)
            return bool(done)

    def close_manual(
        self,
        post_id: str,
        account_id: str,
        by: str,
        confirmation: str,
        at: datetime,
    ) -> domain.ManualTask | None:
        """Close an open task (None if none is open)."""
        key = (
            manual_takedowns.c.post_id == post_id,
            manual_takedowns.c.account_id == account_id,
            manual_takedowns.c.closed_at.is_(None),
        )
        with self.engine.begin() as conn:
            done = conn.execute(
                manual_takedowns.update()
                .where(*key)
                .values(closed_at=at, closed_by=by, confirmation=confirmation)
            ).rowcount
            if not done:
                return None
            row = conn.execute(
                manual_takedowns.select().where(
                    manual_takedowns.c.post_id == post_id,
                    manual_takedowns.c.account_id == account_id,
                )
            ).one()
        return _manual(row._mapping)


def _takedown(row: Any) -> domain.Takedown:
    return domain.Takedown(
        takedown_id=row["takedown_id"],
        school_id=row["school_id"],
        reason=row["reason"],
        requested_at=row["requested_at"],
        pupil_id=row["pupil_id"],
        detail=row["detail"] or "",
        by=row["by"],
        changed_at=row["changed_at"],
        completed_at=row["completed_at"],
    )


def _manual(row: Any) -> domain.ManualTask:
    return domain.ManualTask(
        post_id=row["post_id"],
        account_id=row["account_id"],
        school_id=row["school_id"],
        reason=row["reason"],
        opened_at=row["opened_at"],
        owner=row["owner"] or "",
        url=row["url"] or "",
        escalated_at=row["escalated_at"],
        closed_at=row["closed_at"],
        closed_by=row["closed_by"],
        confirmation=row["confirmation"] or "",
    )
