"""The admin function the CLI and the demo seed use."""

from __future__ import annotations

import pytest

from services.publishing import admin
from shared.errors import ConflictError, InvalidInputError
from tests.unit.publishing.builders import a_rig, an_account


def test_adding_an_account_is_idempotent(tmp_path):
    rig = a_rig(tmp_path, an_account("other"))

    first = admin.add_account(
        rig.ports, "north", "web", "folder", "Website", {"path": "/p"}
    )
    second = admin.add_account(
        rig.ports, "north", "web", "folder", "Website", {"path": "/p"}
    )

    assert (first, second) == (True, False)
    assert rig.accounts.get("web").config == {"path": "/p"}


def test_an_account_id_taken_by_another_school_is_a_conflict(tmp_path):
    rig = a_rig(tmp_path, an_account("web", school="south"))

    with pytest.raises(ConflictError):
        admin.add_account(rig.ports, "north", "web", "folder", "Website", {})


def test_an_unknown_kind_is_refused(tmp_path):
    rig = a_rig(tmp_path)

    with pytest.raises(InvalidInputError):
        admin.add_account(rig.ports, "north", "web", "carrier-pigeon", "Pigeon", {})
