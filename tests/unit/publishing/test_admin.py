"""The admin function the CLI and the demo seed use."""

from __future__ import annotations

import pytest

from services.publishing import admin
from shared.errors import ConflictError, InvalidInputError
from tests.unit.publishing.test_accounts_admin import a_sql_rig, an_account_of


def test_adding_an_account_is_idempotent(tmp_path):
    rig = a_sql_rig(tmp_path)
    an_account_of(rig, "other")

    first = admin.add_account(
        rig.ports, "north", "web", "folder", "Website", owner="head.north"
    )
    second = admin.add_account(
        rig.ports, "north", "web", "folder", "Website", owner="head.north"
    )

    assert (first, second) == (True, False)
    stored = rig.account("web")
    assert (stored.school_id, stored.owner, stored.external_id) == (
        "north",
        "head.north",
        "north/web",
    )


def test_an_account_id_taken_by_another_school_is_a_conflict(tmp_path):
    rig = a_sql_rig(tmp_path)
    an_account_of(rig, "web", school="south")

    with pytest.raises(ConflictError):
        admin.add_account(rig.ports, "north", "web", "folder", "Website", owner="o")


def test_an_unknown_kind_is_refused(tmp_path):
    rig = a_sql_rig(tmp_path)

    with pytest.raises(InvalidInputError):
        admin.add_account(
            rig.ports, "north", "web", "carrier-pigeon", "Pigeon", owner="o"
        )


def test_a_free_folder_path_is_refused(tmp_path):
    rig = a_sql_rig(tmp_path)

    with pytest.raises(InvalidInputError) as refused:
        admin.add_account(
            rig.ports, "north", "web", "folder", "Website", {"path": "/p"}, owner="o"
        )

    assert refused.value.code == "bad_path"
    assert rig.ports.accounts.get("web") is None
