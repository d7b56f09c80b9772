"""The five APIs' behaviour over the fake's state, following reference/openedx-services.md.

Each endpoint method takes a parsed ``Call`` and the authenticated ``User`` and returns an
``Answer``; the server layer does sockets, knobs and recording. Status codes and bodies are
the documented (and, for Credentials, observed) ones: 201 upserts with a stable ``uuid``,
nested 400 bodies, 500 for a program award to a learner Credentials has no user row for,
20-per-page pagination with full ``next`` URLs and 404 past the end, ``only_visible``,
403 without ``view_usercredential``, 429 + ``Retry-After`` after 15 requests a minute for
non-staff, 401 bodies for missing, invalid and expired JWTs.
"""

from __future__ import annotations

import math
import re
import threading
import time
import uuid as uuidlib
from collections import deque
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any, TypeVar
from urllib.parse import unquote, urlencode

from tests.fakes.openedx import jwt
from tests.fakes.openedx.model import (
    CERTIFICATE_TYPES,
    PASSING_STATUSES,
    VIEW_USERCREDENTIAL,
    CourseCertificateConfig,
    CourseRun,
    LmsCertificate,
    OAuthClient,
    Program,
    User,
    UserCredential,
)

PAGE_SIZE = 20
THROTTLE_RATE = 15
THROTTLE_WINDOW = 60.0
DATE_FORMAT = "%Y-%m-%dT%H:%M:%SZ"
NOT_PROVIDED = "Authentication credentials were not provided."
NO_PERMISSION = "You do not have permission to perform this action."
_V = TypeVar("_V")


@dataclass(frozen=True, slots=True)
class Call:
    """A parsed request."""

    method: str
    path: str
    query: Mapping[str, list[str]]
    body: Any
    host: str
    authorization: str | None

    def param(self, name: str) -> str | None:
        """The last value of a query parameter, as Django's ``QueryDict.get``."""
        values = self.query.get(name)
        return values[-1] if values else None


@dataclass(slots=True)
class Answer:
    """A response: JSON unless ``body`` is text (``force_json``: a text body as a JSON string)."""

    status: int
    body: Any = None
    headers: dict[str, str] = field(default_factory=dict)
    force_json: bool = False


class ByUsername(dict[tuple[str, ...], _V]):
    """A dict keyed by tuples that start with a username, with an index by username.

    Credentials' user credentials and the LMS's certificates are kept in these: a list
    filtered by username reads only that user's entries, in the order they were first
    stored, as a scan of the whole dict would (the benchmark's world holds tens of thousands
    of them, and a scan per request made the fake its own bottleneck).
    """

    def __init__(self) -> None:
        super().__init__()
        self._by_username: dict[str, dict[tuple[str, ...], _V]] = {}

    def __setitem__(self, key: tuple[str, ...], value: _V) -> None:
        super().__setitem__(key, value)
        self._by_username.setdefault(key[0], {})[key] = value

    def __delitem__(self, key: tuple[str, ...]) -> None:
        super().__delitem__(key)
        del self._by_username[key[0]][key]

    def clear(self) -> None:
        """Forget every entry."""
        super().clear()
        self._by_username.clear()

    def of(self, username: str | None) -> list[_V]:
        """The entries of ``username`` (every entry when ``None``), in stored order."""
        if username is None:
            return list(self.values())
        return list(self._by_username.get(username, {}).values())


def _server_error() -> Answer:
    return Answer(500, "<h1>Server Error (500)</h1>")


def _iso(value: datetime | None) -> str | None:
    return value.astimezone(UTC).strftime(DATE_FORMAT) if value else None


def parse_datetime(value: str) -> datetime | None:
    """DRF's DateTimeField input: ISO-8601; naive means UTC; anything else is None."""
    try:
        parsed = datetime.fromisoformat(value.replace("Z", "+00:00"))
    except ValueError:
        return None
    return parsed if parsed.tzinfo else parsed.replace(tzinfo=UTC)


@dataclass(frozen=True, slots=True)
class Route:
    """A URL pattern, its service, and endpoint names by method."""

    pattern: re.Pattern[str]
    service: str
    endpoints: Mapping[str, str]


ROUTES = (
    Route(re.compile(r"^/oauth2/access_token/?$"), "oauth", {"POST": "access_token"}),
    Route(
        re.compile(r"^/api/v2/credentials/$"),
        "credentials",
        {"GET": "credentials_list", "POST": "credentials_post"},
    ),
    Route(
        re.compile(r"^/api/v2/course_certificates/$"),
        "credentials",
        {"POST": "course_certificates_post"},
    ),
    Route(
        re.compile(r"^/api/certificates/v0/certificates/(?P<username>[^/]+)/$"),
        "lms",
        {"GET": "certificates_list"},
    ),
    Route(
        re.compile(
            r"^/api/certificates/v0/certificates/(?P<username>[^/]+)/courses/(?P<course_id>[^/]+)/$"
        ),
        "lms",
        {"GET": "certificate_detail"},
    ),
    Route(
        re.compile(r"^/api/course_modes/v1/courses/(?P<course_id>[^/]+)/$"),
        "lms",
        {"GET": "course_modes"},
    ),
    Route(
        re.compile(r"^/api/contentstore/v1/course_details/(?P<course_id>[^/]+)$"),
        "studio",
        {"GET": "course_details"},
    ),
    Route(re.compile(r"^/api/v1/programs/$"), "discovery", {"GET": "programs_list"}),
    Route(
        re.compile(r"^/api/v1/programs/(?P<uuid>[^/]+)/$"),
        "discovery",
        {"GET": "program_detail"},
    ),
)


def route(method: str, raw_path: str) -> tuple[Route, str | None, dict[str, str]] | None:
    """The route of a path (endpoint ``None``: method not allowed), with decoded params."""
    for candidate in ROUTES:
        match = candidate.pattern.match(raw_path)
        if match:
            params = {name: unquote(value) for name, value in match.groupdict().items()}
            return candidate, candidate.endpoints.get(method), params
    return None


class OpenEdx:
    """State and behaviour of the fake LMS, Studio, Discovery and Credentials. Thread-safe."""

    def __init__(self, *, signing_key: bytes | None = None) -> None:
        self.lock = threading.RLock()
        self._key = signing_key or uuidlib.uuid4().bytes
        self._clear()

    def reset(self) -> None:
        """Forget every user, client, run, program, config, credential and setting."""
        with self.lock:
            self._clear()

    def _clear(self) -> None:
        self.token_lifetime = 3600.0
        self.token_generation = 0
        self.program_not_configured_status = 400
        self.throttle_rate = THROTTLE_RATE
        self.users: dict[str, User] = {}
        self.clients: dict[str, OAuthClient] = {}
        self.runs: dict[str, CourseRun] = {}
        self.programs: dict[str, Program] = {}
        self.configs: dict[str, CourseCertificateConfig] = {}
        self.credentials: ByUsername[UserCredential] = ByUsername()
        self.certificates: ByUsername[LmsCertificate] = ByUsername()
        self._throttle: dict[str, deque[float]] = {}
        self._config_ids = 0
        self.issued_tokens: list[str] = []

    # ------------------------------------------------------------------ auth

    def issue_token(self, call: Call) -> Answer:
        """``POST /oauth2/access_token``: client credentials → JWT."""
        form = call.body if isinstance(call.body, dict) else {}
        if form.get("grant_type") != "client_credentials":
            return Answer(400, {"error": "unsupported_grant_type"})
        with self.lock:
            client = self.clients.get(str(form.get("client_id", "")))
            if client is None or client.client_secret != form.get("client_secret"):
                return Answer(401, {"error": "invalid_client"})
            user = self.users[client.username]
            now = time.time()
            lifetime = self.token_lifetime
            if form.get("token_type", "").lower() != "jwt":
                # A bearer token: the APIs here only take JWTs, as the worker must send.
                bearer = uuidlib.uuid4().hex
                self.issued_tokens.append(bearer)
                return Answer(
                    200,
                    {
                        "access_token": bearer,
                        "expires_in": int(lifetime),
                        "token_type": "Bearer",
                        "scope": "read write",
                    },
                )
            claims = jwt.Claims(
                username=user.username,
                administrator=user.is_staff,
                expires_at=now + lifetime,
                generation=self.token_generation,
            )
            token = jwt.mint(self._key, claims, issued_at=now)
            self.issued_tokens.append(token)
        return Answer(
            200,
            {
                "access_token": token,
                "expires_in": math.ceil(lifetime),
                "token_type": "JWT",
                "scope": "read write email profile",
            },
        )

    def authenticate(self, call: Call) -> User | Answer:
        """The user of a ``JWT`` Authorization header, or the 401 DRF answers."""
        header = call.authorization or ""
        scheme, _, token = header.partition(" ")
        if scheme != "JWT" or not token.strip():
            return _unauthorized(NOT_PROVIDED)
        with self.lock:
            try:
                claims = jwt.verify(
                    self._key, token.strip(), now=time.time(), generation=self.token_generation
                )
            except jwt.TokenError as error:
                return _unauthorized(error.detail)
            user = self.users.get(claims.username)
        if user is None:
            return _unauthorized("Invalid token.")
        return user

    def throttled(self, user: User) -> Answer | None:
        """DRF's user-rate throttle on credential views: non-staff, 15 a minute."""
        if user.is_staff:
            return None
        now = time.monotonic()
        with self.lock:
            history = self._throttle.setdefault(user.username, deque())
            while history and history[0] <= now - THROTTLE_WINDOW:
                history.popleft()
            if len(history) >= self.throttle_rate:
                wait = max(1, math.ceil(THROTTLE_WINDOW - (now - history[0])))
                return Answer(
                    429,
                    {"detail": f"Request was throttled. Expected available in {wait} seconds."},
                    {"Retry-After": str(wait)},
                )
            history.append(now)
        return None

    # ------------------------------------------------------------------ Credentials

    def credentials_post(self, call: Call, user: User) -> Answer:
        """``POST /api/v2/credentials/``: upsert one user credential."""
        if not user.is_staff:
            return Answer(403, {"detail": NO_PERMISSION})
        throttled = self.throttled(user)
        if throttled:
            return throttled
        body = call.body
        if not isinstance(body, dict):
            kind = type(body).__name__
            return Answer(
                400, {"non_field_errors": [f"Invalid data. Expected a dictionary, but got {kind}."]}
            )
        with self.lock:
            checked = self._validate_credential_post(body)
            if isinstance(checked, Answer):
                return checked
            kind, key, mode = checked
            username = str(body["username"])
            if kind == "program":
                learner = self.users.get(username)
                if learner is None or not learner.in_credentials:
                    return _server_error()  # observed: the e-mail path needs the user row
            stored = self._upsert_credential(
                username=username,
                kind=kind,
                key=key,
                mode=mode,
                status=str(body.get("status", "awarded")),
                body=body,
            )
            return Answer(201, self._credential_json(stored, call.host))

    def _validate_credential_post(
        self, body: Mapping[str, Any]
    ) -> tuple[str, str, str | None] | Answer:
        """(type, key, mode) of a valid body, or the 400/404 Credentials answers."""
        errors: dict[str, Any] = {}
        if not body.get("username"):
            errors["username"] = ["This field is required."]
        status = body.get("status", "awarded")
        if status not in ("awarded", "revoked"):
            errors["status"] = [f'"{status}" is not a valid choice.']
        credential = body.get("credential")
        resolved: tuple[str, str, str | None] | None = None
        if not isinstance(credential, dict):
            errors["credential"] = ["This field is required."]
        else:
            outcome = self._resolve_credential(credential)
            if isinstance(outcome, Answer):
                return outcome
            if isinstance(outcome, tuple):
                resolved = outcome
            else:
                errors["credential"] = outcome
        if errors or resolved is None:
            return Answer(400, errors)
        return resolved

    def _resolve_credential(
        self, credential: Mapping[str, Any]
    ) -> tuple[str, str, str | None] | dict[str, str] | list[str] | Answer:
        """Credentials' ``CredentialField``: the program or run config, or its errors."""
        program_uuid = credential.get("program_uuid")
        if program_uuid:
            program = self.programs.get(str(program_uuid))
            if program is not None and program.in_credentials:
                return ("program", str(program_uuid), None)
            if self.program_not_configured_status == 404:
                return Answer(404, {"detail": "Not found."})
            message = f"No active ProgramCertificate exists for program [{program_uuid}]"
            return {"program_uuid": message}
        run_key = credential.get("course_run_key")
        if not run_key:
            return ["Credential identifier is missing."]
        return self._resolve_run(str(run_key), str(credential.get("mode") or ""))

    def _resolve_run(self, run_key: str, mode: str) -> tuple[str, str, str | None] | dict[str, str]:
        run = self.runs.get(run_key)
        if run is None or not run.in_credentials_catalog:
            return {
                "course_run_key": "CourseCertificate failed to create because the CourseRun "
                f"{run_key} doesn't exist in the catalog"
            }
        config = self.run_config(run_key, mode)
        if not config.is_active:
            return {
                "course_run_key": f"No active CourseCertificate exists for course run [{run_key}]"
            }
        return ("course-run", run_key, config.certificate_type)

    def run_config(self, run_key: str, mode: str) -> CourseCertificateConfig:
        """The run's one certificate config, created with ``mode`` if it has none.

        ref (observed): every course-run credential of a run is filed under this config; a
        credential posted with another mode is filed under it all the same, and reads
        answer the config's type as its ``mode``.
        """
        config = self.configs.get(run_key)
        if config is None:
            self._config_ids += 1
            config = CourseCertificateConfig(
                course_id=run_key,
                certificate_type=mode,
                certificate_available_date=None,
                is_active=True,
                id=self._config_ids,
            )
            self.configs[run_key] = config
        return config

    def _upsert_credential(
        self,
        *,
        username: str,
        kind: str,
        key: str,
        mode: str | None,
        status: str,
        body: Mapping[str, Any],
    ) -> UserCredential:
        now = datetime.now(UTC)
        stored = self.credentials.get((username, kind, key))
        if stored is None:
            stored = UserCredential(
                uuid=uuidlib.uuid4().hex,
                username=username,
                type=kind,
                key=key,
                status=status,
                mode=mode,
                created=now,
                modified=now,
            )
            self.credentials[(username, kind, key)] = stored
        stored.status = status
        stored.modified = now
        if body.get("lms_user_id") is not None:
            stored.lms_user_id = int(body["lms_user_id"])
        if kind == "course-run":
            override = body.get("date_override")
            stored.date_override = (
                str(override.get("date"))
                if isinstance(override, dict) and override.get("date")
                else None
            )
        return stored

    def _credential_json(self, stored: UserCredential, host: str) -> dict[str, Any]:
        if stored.type == "program":
            credential: dict[str, Any] = {
                "type": "program",
                "credential_id": list(self.programs).index(stored.key) + 1
                if stored.key in self.programs
                else 0,
                "program_uuid": stored.key,
            }
        else:
            # Filed under the run's config: its type is the mode every read answers.
            config = self.configs.get(stored.key)
            mode = config.certificate_type if config is not None else stored.mode
            credential = {"type": "course-run", "course_run_key": stored.key, "mode": mode}
        return {
            "username": stored.username,
            "credential": credential,
            "status": stored.status,
            "download_url": None,
            "uuid": stored.uuid,
            "attributes": [],
            "date_override": {"date": stored.date_override} if stored.date_override else None,
            "created": _iso(stored.created),
            "modified": _iso(stored.modified),
            "certificate_url": f"http://{host}/credentials/{stored.uuid}/",
        }

    def _visible(self, stored: UserCredential, now: datetime) -> bool:
        """Credentials' ``filter_visible``: course CAD passed; program: latest course date."""
        if stored.type == "course-run":
            config = self.configs.get(stored.key)
            cad = config.certificate_available_date if config else None
            return cad is None or cad <= now
        program = self.programs.get(stored.key)
        if program is None:
            return False
        dates: list[datetime] = []
        for run in program.run_keys():
            course = self.credentials.get((stored.username, "course-run", run))
            if course is None:
                continue
            config = self.configs.get(run)
            cad = config.certificate_available_date if config else None
            dates.append(cad or course.created)
        return bool(dates) and max(dates) <= now

    def credentials_list(self, call: Call, user: User) -> Answer:
        """``GET /api/v2/credentials/``: filtered, 20 a page, ``next`` as a full URL."""
        username = call.param("username")
        own = username is not None and username == user.username
        allowed = own or user.is_superuser or VIEW_USERCREDENTIAL in user.permissions
        if not allowed:
            return Answer(403, {"detail": NO_PERMISSION})
        throttled = self.throttled(user)
        if throttled:
            return throttled
        status = call.param("status")
        if status and status not in ("awarded", "revoked"):
            return Answer(
                400,
                {
                    "status": [
                        f"Select a valid choice. {status} is not one of the available choices."
                    ]
                },
            )
        kind = call.param("type")
        if kind not in ("program", "course-run"):
            kind = None  # an unknown type is ignored, as django-filter does
        program_uuid = call.param("program_uuid")
        only_visible = (call.param("only_visible") or "").lower() in ("true", "1")
        now = datetime.now(UTC)
        with self.lock:
            items = [
                stored
                for stored in self.credentials.of(username)
                if (kind is None or stored.type == kind)
                and (not status or stored.status == status)
                and (not program_uuid or (stored.type == "program" and stored.key == program_uuid))
                and (not only_visible or self._visible(stored, now))
            ]
            page_text = call.param("page") or "1"
            try:
                page = int(page_text)
            except ValueError:
                return Answer(404, {"detail": "Invalid page."})
            pages = max(1, math.ceil(len(items) / PAGE_SIZE))
            if page < 1 or page > pages:
                return Answer(404, {"detail": "Invalid page."})
            chunk = items[(page - 1) * PAGE_SIZE : page * PAGE_SIZE]
            results = [self._credential_json(stored, call.host) for stored in chunk]
        return Answer(
            200,
            {
                "count": len(items),
                "next": self._page_url(call, page + 1) if page < pages else None,
                "previous": self._page_url(call, page - 1) if page > 1 else None,
                "results": results,
            },
        )

    @staticmethod
    def _page_url(call: Call, page: int) -> str:
        query = [
            (name, value)
            for name, values in call.query.items()
            if name != "page"
            for value in values
        ]
        if page > 1:
            query.append(("page", str(page)))
        text = urlencode(query)
        return f"http://{call.host}{call.path}" + (f"?{text}" if text else "")

    def course_certificates_post(self, call: Call, user: User) -> Answer:
        """``POST /api/v2/course_certificates/``: upsert a run's config (staff only)."""
        if not user.is_staff:
            return Answer(403, {"detail": NO_PERMISSION})
        body = call.body if isinstance(call.body, dict) else {}
        errors: dict[str, list[str]] = {}
        course_id = body.get("course_id")
        if not course_id:
            errors["course_id"] = ["This field is required."]
        certificate_type = body.get("certificate_type")
        if not certificate_type:
            errors["certificate_type"] = ["This field is required."]
        elif certificate_type not in CERTIFICATE_TYPES:
            errors["certificate_type"] = [f'"{certificate_type}" is not a valid choice.']
        available: datetime | None = None
        raw_date = body.get("certificate_available_date")
        if raw_date is not None:
            available = parse_datetime(str(raw_date)) if isinstance(raw_date, str) else None
            if available is None:
                errors["certificate_available_date"] = [
                    "Datetime has wrong format. Use one of these formats instead: "
                    "YYYY-MM-DDThh:mm[:ss[.uuuuuu]][+HH:MM|-HH:MM|Z]."
                ]
        is_active = body.get("is_active")
        if "is_active" in body and not isinstance(is_active, bool):
            errors["is_active"] = ["Must be a valid boolean."]
        if errors:
            return Answer(400, errors)
        if "is_active" not in body or "certificate_available_date" not in body:
            return _server_error()  # observed: the view reads both keys unconditionally
        with self.lock:
            existing = self.configs.get(str(course_id))
            if existing is not None and existing.certificate_type != certificate_type:
                return _server_error()  # observed: one config per run (unique constraint)
            if existing is None:
                self._config_ids += 1
                existing = CourseCertificateConfig(
                    course_id=str(course_id),
                    certificate_type=str(certificate_type),
                    certificate_available_date=None,
                    is_active=True,
                    id=self._config_ids,
                )
                self.configs[str(course_id)] = existing
            existing.certificate_available_date = available
            existing.is_active = bool(is_active)
            run = self.runs.get(str(course_id))
            return Answer(
                201,
                {
                    "id": existing.id,
                    "site": 1,
                    "course_id": existing.course_id,
                    "course_run": str(course_id) if run and run.in_credentials_catalog else None,
                    "certificate_type": existing.certificate_type,
                    "certificate_available_date": _iso(existing.certificate_available_date),
                    "is_active": existing.is_active,
                },
            )

    # ------------------------------------------------------------------ LMS

    def _certificate_json(self, cert: LmsCertificate) -> dict[str, Any]:
        return {
            "username": cert.username,
            "course_id": cert.course_id,
            "certificate_type": cert.mode,
            "created_date": _iso(cert.created),
            "modified_date": _iso(cert.modified),
            "status": cert.status,
            "is_passing": cert.status in PASSING_STATUSES,
            "download_url": None,
            "grade": cert.grade,
            "uuid": cert.uuid,
        }

    def certificates_list(self, _call: Call, user: User, *, username: str) -> Answer:
        """``GET /api/certificates/v0/certificates/{username}/``: passing, viewable only."""
        if username != user.username and not user.is_staff:
            return Answer(403, {"detail": NO_PERMISSION})
        with self.lock:
            items = [
                self._certificate_json(cert)
                for cert in self.certificates.of(username)
                if cert.status in PASSING_STATUSES
                and (run := self.runs.get(cert.course_id)) is not None
                and run.certificates_viewable
            ]
        return Answer(200, items)

    def certificate_detail(
        self, _call: Call, user: User, *, username: str, course_id: str
    ) -> Answer:
        """``GET .../certificates/{username}/courses/{course_id}/``: any non-audit status."""
        if username != user.username and not user.is_staff:
            return Answer(403, {"detail": NO_PERMISSION})
        with self.lock:
            cert = self.certificates.get((username, course_id))
            if cert is None or cert.status.startswith("audit"):
                return Answer(
                    404,
                    {
                        "error_code": "no_certificate_for_user",
                        "developer_message": "Could not find a certificate for this user.",
                    },
                )
            return Answer(200, self._certificate_json(cert))

    def course_modes(self, _call: Call, _user: User, *, course_id: str) -> Answer:
        """``GET /api/course_modes/v1/courses/{course_id}/``: a plain list."""
        with self.lock:
            run = self.runs.get(course_id)
            if run is None:
                return Answer(404, {"detail": "Not found."})
            modes = run.modes
        return Answer(
            200,
            [
                {
                    "course_id": course_id,
                    "mode_slug": mode,
                    "mode_display_name": mode.replace("-", " ").title(),
                    "min_price": 0 if mode in ("audit", "honor") else 100,
                    "currency": "usd",
                    "expiration_datetime": None,
                    "expiration_datetime_is_explicit": False,
                    "description": None,
                    "sku": None,
                    "android_sku": None,
                    "ios_sku": None,
                    "bulk_sku": None,
                }
                for mode in modes
            ],
        )

    # ------------------------------------------------------------------ Studio

    def course_details(self, _call: Call, user: User, *, course_id: str) -> Answer:
        """``GET /api/contentstore/v1/course_details/{course_id}`` (staff)."""
        if not user.is_staff:
            return Answer(403, {"detail": NO_PERMISSION})
        with self.lock:
            run = self.runs.get(course_id)
            if run is None:
                return Answer(
                    404,
                    {"error_code": "course_does_not_exist", "developer_message": "Unknown course"},
                )
            org, _, rest = course_id.partition(":")[2].partition("+")
            return Answer(
                200,
                {
                    "course_id": course_id,
                    "org": org,
                    "run": rest.rpartition("+")[2],
                    "title": course_id,
                    "self_paced": run.self_paced,
                    "start_date": _iso(run.start),
                    "end_date": _iso(run.end),
                    "certificate_available_date": _iso(run.certificate_available_date),
                    "certificates_display_behavior": run.display_behavior,
                },
            )

    # ------------------------------------------------------------------ Discovery

    def _program_json(self, program: Program) -> dict[str, Any]:
        return {
            "uuid": program.uuid,
            "title": program.title or program.uuid,
            "status": program.status,
            "type": "Professional Certificate",
            "authoring_organizations": [],
            "courses": [
                {
                    "key": course.key,
                    "uuid": str(uuidlib.uuid5(uuidlib.NAMESPACE_URL, course.key)),
                    "title": course.key,
                    "course_runs": [
                        {"key": key, "type": seat, "status": "published"}
                        for key, seat in course.runs.items()
                    ],
                }
                for course in program.courses
            ],
        }

    def programs_list(self, call: Call, _user: User) -> Answer:
        """``GET /api/v1/programs/``: ``uuids_only=1`` gives a flat list of UUIDs."""
        statuses = set(call.query.get("status", []))
        with self.lock:
            programs = [
                program
                for program in self.programs.values()
                if not statuses or program.status in statuses
            ]
            if call.param("uuids_only") == "1":
                return Answer(200, [program.uuid for program in programs])
            results = [self._program_json(program) for program in programs]
        return Answer(
            200, {"count": len(results), "next": None, "previous": None, "results": results}
        )

    def program_detail(self, _call: Call, _user: User, *, uuid: str) -> Answer:
        """``GET /api/v1/programs/{uuid}/``."""
        with self.lock:
            program = self.programs.get(uuid)
            if program is None:
                return Answer(404, {"detail": "Not found."})
            return Answer(200, self._program_json(program))

    # ------------------------------------------------------------------ dispatch

    def handler(self, endpoint: str) -> Callable[..., Answer]:
        """The method serving ``endpoint``."""
        method: Callable[..., Answer] = getattr(self, endpoint)
        return method


def _unauthorized(detail: str) -> Answer:
    return Answer(401, {"detail": detail}, {"WWW-Authenticate": 'JWT realm="api"'})
