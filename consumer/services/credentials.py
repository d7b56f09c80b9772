"""Credentials' v2 API: the learner's credentials and the course-certificate configs.

Every write is an upsert that answers 201 (create, repeat, re-award, revoke alike), so a
replayed event is harmless. Payloads are the seed's (``openedx/core/djangoapps/programs/
tasks.py``): course-run credentials carry ``date_override`` as ``{"date": ...}`` or JSON
``null`` (``null`` deletes an existing override); program credentials carry the username,
the LMS user id and the program UUID.

A program Credentials has no active ``ProgramCertificate`` for is answered 400
``{"credential": {"program_uuid": "No active ProgramCertificate exists ..."}}`` (404 on
older deployments). That is a *skip*: ``post_program_credential`` returns
``ProgramWrite.NOT_CONFIGURED`` instead of raising.

Reads are validated item by item (``answers.AnswerReader``): an answer of another shape is a
``MalformedAnswerError``. A course-run credential's ``mode`` is *not* the learner's mode:
Credentials files every course-run credential of a run under the run's one certificate
config and answers the config's type (observed), so only *which* runs a learner holds is
read from here (``awarded_course_runs``), never in which mode.
"""

from __future__ import annotations

import enum
from collections.abc import Iterator, Mapping
from dataclasses import dataclass
from datetime import datetime
from typing import Any, Literal
from urllib.parse import parse_qsl, urlsplit

from consumer.commands import CredentialStatus, iso_utc
from consumer.errors import PermanentError, RejectedError, TransientError
from consumer.services.answers import AnswerReader
from consumer.services.http import HttpClient

CREDENTIALS_PATH = "api/v2/credentials/"
COURSE_CERTIFICATES_PATH = "api/v2/course_certificates/"
MAX_PAGES = 500
"""A learner never has 10,000 credentials; more pages means a paging loop."""

CredentialType = Literal["program", "course-run"]
NOT_CONFIGURED_MARKER = "No active ProgramCertificate"


class ProgramWrite(enum.Enum):
    """What a program-credential POST did."""

    APPLIED = "applied"
    NOT_CONFIGURED = "program_not_configured"


_LIST = AnswerReader("credentials", "credentials_list")


@dataclass(frozen=True, slots=True)
class UserCredential:
    """One of the learner's credentials as Credentials lists it (username left out).

    ``mode`` of a course-run credential is the run's certificate config type, not the mode
    of the learner's certificate (see the module docstring).
    """

    uuid: str
    type: str
    status: str
    program_uuid: str | None = None
    course_run_key: str | None = None
    mode: str | None = None


def _parse_credential(value: object, where: str) -> UserCredential:
    """One list item, checked: a program needs its UUID, a course run its key (strings)."""
    item = _LIST.mapping(value, where)
    credential = _LIST.mapping(item.get("credential"), f"{where}.credential")
    kind = _LIST.text(credential.get("type"), f"{where}.credential.type")
    parsed = UserCredential(
        uuid=_LIST.optional_text(item.get("uuid"), f"{where}.uuid") or "",
        type=kind,
        status=_LIST.optional_text(item.get("status"), f"{where}.status") or "",
        program_uuid=_LIST.optional_text(
            credential.get("program_uuid"), f"{where}.credential.program_uuid"
        ),
        course_run_key=_LIST.optional_text(
            credential.get("course_run_key"), f"{where}.credential.course_run_key"
        ),
        mode=_LIST.optional_text(credential.get("mode"), f"{where}.credential.mode"),
    )
    if kind == "program" and parsed.program_uuid is None:
        _LIST.fail(f"{where}.credential.program_uuid", "missing")
    if kind == "course-run" and parsed.course_run_key is None:
        _LIST.fail(f"{where}.credential.course_run_key", "missing")
    return parsed


def is_program_not_configured(error: RejectedError) -> bool:
    """Whether Credentials rejected a program write because the program is not set up."""
    if error.status == 404:
        return True
    if error.status != 400 or not isinstance(error.body, dict):
        return False
    credential = error.body.get("credential")
    if not isinstance(credential, dict):
        return False
    messages = credential.get("program_uuid")
    texts = messages if isinstance(messages, list) else [messages]
    return any(isinstance(text, str) and NOT_CONFIGURED_MARKER in text for text in texts)


class CredentialsClient:
    """Reads and writes a learner's credentials and course-certificate configs. Thread-safe."""

    service = "credentials"

    def __init__(self, http: HttpClient) -> None:
        self._http = http

    # ------------------------------------------------------------------ writes

    def post_course_run_credential(
        self,
        *,
        username: str,
        course_run: str,
        mode: str,
        status: CredentialStatus,
        date_override: datetime | None,
        request_id: str,
    ) -> None:
        """Upsert the learner's course-run credential (seed: ``post_course_certificate``).

        Idempotent. Raises the ``http`` errors; a run unknown to Credentials' catalog or
        with an inactive config is a ``RejectedError`` (400).
        """
        override = iso_utc(date_override)
        self._http.call(
            "POST",
            CREDENTIALS_PATH,
            endpoint="credentials_post",
            request_id=request_id,
            json_body={
                "username": username,
                "status": status,
                "credential": {"course_run_key": course_run, "mode": mode, "type": "course-run"},
                "date_override": {"date": override} if override else None,
            },
            redact=(username,),
        )

    def post_program_credential(
        self,
        *,
        username: str,
        lms_user_id: int,
        program_uuid: str,
        status: CredentialStatus,
        request_id: str,
    ) -> ProgramWrite:
        """Award or revoke the learner's program credential (seed: ``award_program_certificate``).

        Idempotent. Returns ``NOT_CONFIGURED`` for the skip case (400 "No active
        ProgramCertificate" or 404); raises the ``http`` errors otherwise — including 500
        for a learner Credentials has no user row for, which no retry fixes.
        """
        payload: dict[str, Any] = {
            "username": username,
            "lms_user_id": lms_user_id,
            "credential": {"type": "program", "program_uuid": program_uuid},
        }
        if status == "revoked":
            payload["status"] = "revoked"
        try:
            self._http.call(
                "POST",
                CREDENTIALS_PATH,
                endpoint="credentials_post",
                request_id=request_id,
                json_body=payload,
                redact=(username,),
            )
        except RejectedError as error:
            if is_program_not_configured(error):
                return ProgramWrite.NOT_CONFIGURED
            raise
        return ProgramWrite.APPLIED

    def post_course_certificate_config(
        self,
        *,
        course_run: str,
        certificate_type: str,
        certificate_available_date: datetime | None,
        request_id: str,
        is_active: bool = True,
    ) -> None:
        """Upsert the run's course-certificate config with all four fields.

        ``certificate_available_date`` goes as ISO-8601 or JSON ``null`` (never "None");
        omitting a field makes Credentials answer 500. Idempotent; raises ``http`` errors.
        """
        self._http.call(
            "POST",
            COURSE_CERTIFICATES_PATH,
            endpoint="course_certificates_post",
            request_id=request_id,
            json_body={
                "course_id": course_run,
                "certificate_type": certificate_type,
                "certificate_available_date": iso_utc(certificate_available_date),
                "is_active": is_active,
            },
        )

    # ------------------------------------------------------------------ reads

    def list_credentials(
        self,
        *,
        username: str,
        request_id: str,
        credential_type: CredentialType | None = None,
        status: CredentialStatus | None = None,
        program_uuid: str | None = None,
        only_visible: bool | None = None,
    ) -> tuple[UserCredential, ...]:
        """Every matching credential of the learner, following ``next`` page by page.

        ``only_visible`` is left out unless given: a worker reading its own writes must
        see credentials before their certificate available date. Blocks for one request
        per 20 credentials. Raises the ``http`` errors (403 when the service user lacks
        ``view_usercredential``).
        """
        params: dict[str, str] = {"username": username}
        if credential_type is not None:
            params["type"] = credential_type
        if status is not None:
            params["status"] = status
        if program_uuid is not None:
            params["program_uuid"] = program_uuid
        if only_visible is not None:
            params["only_visible"] = "true" if only_visible else "false"
        return tuple(self._pages(params, request_id=request_id, username=username))

    def awarded_program_uuids(self, *, username: str, request_id: str) -> frozenset[str]:
        """UUIDs of the learner's awarded program credentials (no ``only_visible``)."""
        credentials = self.list_credentials(
            username=username, request_id=request_id, credential_type="program", status="awarded"
        )
        return frozenset(
            item.program_uuid
            for item in credentials
            if item.type == "program" and item.program_uuid
        )

    def awarded_course_runs(self, *, username: str, request_id: str) -> frozenset[str]:
        """Keys of the runs the learner holds an awarded course-run credential in.

        Which runs only: the ``mode`` Credentials answers is the run's config type, not the
        learner's (see the module docstring), so completion takes modes elsewhere.
        """
        credentials = self.list_credentials(
            username=username,
            request_id=request_id,
            credential_type="course-run",
            status="awarded",
        )
        return frozenset(
            item.course_run_key
            for item in credentials
            if item.type == "course-run" and item.course_run_key
        )

    def _pages(
        self, params: dict[str, str], *, request_id: str, username: str
    ) -> Iterator[UserCredential]:
        """Yield the checked results of every page, following ``next``.

        ``next`` is followed by its query only, against the configured root, so a proxy's
        idea of the host or scheme does not matter.
        """
        query: Mapping[str, str] = params
        seen: set[tuple[tuple[str, str], ...]] = set()
        for page in range(MAX_PAGES):
            key = tuple(sorted(query.items()))
            if key in seen:
                raise PermanentError("credentials pagination repeats a page", service="credentials")
            seen.add(key)
            try:
                reply = self._http.call(
                    "GET",
                    CREDENTIALS_PATH,
                    endpoint="credentials_list",
                    request_id=request_id,
                    params=query,
                    redact=(username,),
                )
            except RejectedError as error:
                if error.status == 404 and page > 0:
                    # The list shrank between pages; reading it again from the start will do.
                    raise TransientError(
                        "credentials list changed while paging", service="credentials", status=404
                    ) from None
                raise
            body = _LIST.mapping(reply.body, f"page {page + 1}")
            results = _LIST.array(body.get("results"), f"page {page + 1} results")
            yield from (
                _parse_credential(item, f"page {page + 1} results[{index}]")
                for index, item in enumerate(results)
            )
            following = _LIST.optional_text(body.get("next"), f"page {page + 1} next")
            if following is None:
                return
            try:
                query = dict(parse_qsl(urlsplit(following).query, keep_blank_values=True))
            except ValueError:
                _LIST.fail(f"page {page + 1} next", "as a string that is not a URL")
        raise PermanentError(
            f"credentials list has more than {MAX_PAGES} pages", service="credentials"
        )
