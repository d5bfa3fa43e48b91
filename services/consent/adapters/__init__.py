"""Consent's adapters: SQL repositories (one per port, each on the engine for the read
side or on a unit of work's connection), the read side for pages, the in-memory face
gallery and the enrolment encoder.

- ``tables``: the tables and row conversions;
- ``roll``: schools and pupils; ``consents``: consent records and never-publish
  flags; ``biometrics``: biometric consent and enrolled encodings; ``accounts``:
  consent's copy of publishing's accounts; ``outbox``: what the outbox holds;
- ``unit``: the unit of work over all of them (``ConsentUnit``);
- ``views``: the read side; ``gallery``: nearest pupil; ``enroller``: photo ->
  encoding.

A use case's changes and the ``ConsentChanged`` it emits commit in one transaction;
a withdrawal, objection or leaving deletes the pupil's encodings in that transaction.
"""

from services.consent.adapters.accounts import SqlTargetAccounts
from services.consent.adapters.biometrics import SqlBiometrics, SqlEnrolments
from services.consent.adapters.consents import SqlConsents, SqlNeverPublish
from services.consent.adapters.enroller import EnrolmentError, FaceRecognitionEnroller
from services.consent.adapters.gallery import SqlFaceGallery, build_gallery, nearest
from services.consent.adapters.outbox import SqlOutboxLog
from services.consent.adapters.roll import SqlPupils, SqlSchools
from services.consent.adapters.tables import (
    biometric_consents,
    consent_records,
    face_encodings,
    metadata,
    never_publish,
    outbox,
    pupils,
    schools,
    target_accounts,
)
from services.consent.adapters.unit import ConsentUnit
from services.consent.adapters.views import SqlConsentViews

__all__ = [
    "ConsentUnit",
    "EnrolmentError",
    "FaceRecognitionEnroller",
    "SqlBiometrics",
    "SqlConsentViews",
    "SqlConsents",
    "SqlEnrolments",
    "SqlFaceGallery",
    "SqlNeverPublish",
    "SqlOutboxLog",
    "SqlPupils",
    "SqlSchools",
    "SqlTargetAccounts",
    "biometric_consents",
    "build_gallery",
    "consent_records",
    "face_encodings",
    "metadata",
    "nearest",
    "never_publish",
    "outbox",
    "pupils",
    "schools",
    "target_accounts",
]
