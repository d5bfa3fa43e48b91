"""What the API's writes accept (validated, extra fields refused)."""

from __future__ import annotations

from datetime import date
from typing import Literal

from pydantic import BaseModel, ConfigDict, Field

MAX_REFERENCE_PHOTOS = 5
MAX_CSV_BYTES = 30 * 1024 * 1024
MAX_LABELS = 100  # faces in one post worth labelling at once

Status = Literal["granted", "refused", "withdrawn", "not_returned"]


class SchoolIn(BaseModel):
    model_config = ConfigDict(extra="forbid", str_strip_whitespace=True)

    slug: str = Field(pattern=r"^[a-z0-9-]{2,40}$")
    name: str = Field(min_length=1, max_length=200)


class PupilIn(BaseModel):
    model_config = ConfigDict(extra="forbid", str_strip_whitespace=True)

    pupil_id: str = Field(min_length=1, max_length=64, pattern=r"^[A-Za-z0-9._/-]+$")
    forename: str = Field(min_length=1, max_length=100)
    surname: str = Field(min_length=1, max_length=100)
    preferred_name: str = Field(default="", max_length=100)
    year_group: str = Field(default="", max_length=20)
    class_name: str = Field(default="", max_length=40)
    on_roll: bool = True
    left_on: date | None = None


class PupilPatch(BaseModel):
    model_config = ConfigDict(extra="forbid", str_strip_whitespace=True)

    forename: str | None = Field(default=None, min_length=1, max_length=100)
    surname: str | None = Field(default=None, min_length=1, max_length=100)
    preferred_name: str | None = Field(default=None, max_length=100)
    year_group: str | None = Field(default=None, max_length=20)
    class_name: str | None = Field(default=None, max_length=40)
    on_roll: bool | None = None
    left_on: date | None = None


class ConsentIn(BaseModel):
    model_config = ConfigDict(extra="forbid", str_strip_whitespace=True)

    purpose: str = Field(pattern=r"^[a-z0-9_]{1,40}$")
    platform: str | None = Field(default=None, pattern=r"^[a-z0-9_]{1,40}$")
    status: Status
    given_by: str = Field(default="", max_length=200)
    relationship: str = Field(default="", max_length=40)
    method: Literal["paper", "online", "mis_import", ""] = ""
    evidence_ref: str = Field(default="", max_length=200)
    expires_on: date | None = None


class BiometricIn(BaseModel):
    model_config = ConfigDict(extra="forbid", str_strip_whitespace=True)

    status: Status
    pupil_objects: bool = False
    given_by: str = Field(default="", max_length=200)
    relationship: str = Field(default="", max_length=40)
    method: Literal["paper", "online", "mis_import", ""] = ""
    evidence_ref: str = Field(default="", max_length=200)


class NeverPublishIn(BaseModel):
    model_config = ConfigDict(extra="forbid", str_strip_whitespace=True)

    active: bool
    category: Literal[
        "looked_after", "adopted", "at_risk", "court_order", "other", ""
    ] = ""
    note: str = Field(default="", max_length=500)
