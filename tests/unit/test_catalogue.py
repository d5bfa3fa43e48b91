"""The message catalogue: current, and the system's shape it shows is whole."""

from __future__ import annotations

from safepost import catalogue
from safepost.embedded import SPECS
from shared import contracts
from shared.runner import consumers

# A command goes to one service. Approval also takes its own `redaction.revise`, sent
# from its API, to show the photo as re-rendering until redaction answers.
SHARED_COMMANDS = {"redaction.revise": {"redaction", "approval"}}


def test_the_catalogue_in_docs_is_current():
    assert catalogue.main(["--check"]) == 0, "run `make schemas`"


def test_every_message_type_is_sent_by_some_service():
    sent = catalogue.senders()

    assert [c.TYPE for c in contracts.ALL if not sent.get(c.TYPE)] == []


def test_every_consumed_type_is_sent_and_every_command_has_one_consumer():
    sent = catalogue.senders()
    taken = consumers(list(SPECS.values()))

    assert [t for t in taken if t not in sent] == []
    for cls in contracts.ALL:
        if cls.KIND != "command":
            continue
        takers = set(taken.get(cls.TYPE, []))
        assert takers == SHARED_COMMANDS.get(cls.TYPE, takers), cls.TYPE
        if cls.TYPE not in SHARED_COMMANDS:
            assert len(takers) == 1, f"{cls.TYPE} is consumed by {sorted(takers)}"
