"""Publishing's adapters: its SQL tables and repositories (accounts and sites, tokens
and pending authorisations, approval rounds and deliveries, takedowns) and its unit of
work. The platforms' adapters are in ``services.publishing.platforms``."""

from services.publishing.adapters.directory import SqlAccountDirectory, SqlSiteRegister
from services.publishing.adapters.rounds import SqlApprovals, SqlDeliveryLog
from services.publishing.adapters.tables import (
    accounts,
    approval_rounds,
    approved_sites,
    deliveries,
    manual_takedowns,
    metadata,
    oauth_states,
    outbox,
    shown_pupils,
    takedowns,
)
from services.publishing.adapters.takedown_log import SqlTakedowns
from services.publishing.adapters.tokens import SqlOAuthStates, SqlTokens
from services.publishing.adapters.unit import PublishingUnit

__all__ = [
    "PublishingUnit",
    "SqlAccountDirectory",
    "SqlApprovals",
    "SqlDeliveryLog",
    "SqlOAuthStates",
    "SqlSiteRegister",
    "SqlTakedowns",
    "SqlTokens",
    "accounts",
    "approval_rounds",
    "approved_sites",
    "deliveries",
    "manual_takedowns",
    "metadata",
    "oauth_states",
    "outbox",
    "shown_pupils",
    "takedowns",
]
