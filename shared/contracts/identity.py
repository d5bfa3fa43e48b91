"""Messages the portal (sign-in, standing in for an identity provider) sends."""

from __future__ import annotations

from typing import ClassVar

from pydantic import Field

from shared.contracts.base import Event, Message


class SignInFailed(Event):
    """A sign-in was refused: a wrong password or an unknown account (``wrong``), or
    too many failures from this browser, account or address (``throttled``)."""

    TYPE: ClassVar[str] = "identity.sign_in_failed"
    VERSION: ClassVar[int] = 1

    # what was typed, if it could be a username (a password typed into the username
    # field is never kept)
    username: str = Field(max_length=80)
    address: str = Field(max_length=64)
    reason: str = Field(max_length=20)
    via: str = Field(max_length=20)  # "page" or "api"


CONTRACTS: tuple[type[Message], ...] = (SignInFailed,)

__all__ = ["SignInFailed"]
