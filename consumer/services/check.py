"""``credentials-consumer check``: a token, then one read from each configured service.

One token fetch, then one harmless read per configured service, each reported as a
printing-ready ``CheckResult`` with a hint when something must be fixed. The probes read a
username and a course run that do not exist, so they touch no learner's data. Secrets are
never part of a result.

The Credentials probe lists another user's credentials: a service user without
``view_usercredential`` gets 403 there (a fresh Credentials database does not grant it to
the Admins group that ``administrator`` tokens join), and the worker could not read the
credentials it needs to award programs.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass

from consumer.errors import ConsumerError, RejectedError
from consumer.services.bundle import Services, build_services
from consumer.services.settings import ServiceSettings

PROBE_USERNAME = "credentials-consumer-check"
PROBE_COURSE_RUN = "course-v1:credentials-consumer+check+probe"
REQUEST_ID = "credentials-consumer-check"

_STAFF_HINT = (
    "grant the OAuth application's user global staff: is_staff ('Staff status' on the user "
    "in the LMS's Django admin), and make sure the application is not a restricted "
    "application (oauth_dispatch restricted applications)"
)
_VIEW_PERMISSION_HINT = (
    "grant the OAuth application's user the Credentials permission view_usercredential "
    "('credentials | user credential | Can view user credential', in Credentials' Django "
    "admin, on the user or its group) or make it a superuser there"
)


@dataclass(frozen=True, slots=True)
class CheckResult:
    """One service's verdict: ``ok``, a one-line summary and, on failure, what to do."""

    service: str
    ok: bool
    summary: str
    hint: str | None = None

    def line(self) -> str:
        """The result as text for a terminal (one line, plus the hint indented)."""
        text = f"{'ok  ' if self.ok else 'FAIL'}  {self.service:<12} {self.summary}"
        return f"{text}\n      hint: {self.hint}" if self.hint else text


def _failure(service: str, error: ConsumerError, *, forbidden_hint: str) -> CheckResult:
    status = getattr(error, "status", None)
    if status == 403:
        return CheckResult(service, ok=False, summary="forbidden (HTTP 403)", hint=forbidden_hint)
    if status == 401 and service == "oauth":
        return CheckResult(
            service,
            ok=False,
            summary="client rejected (HTTP 401)",
            hint=(
                "the LMS does not know this client id and secret: check "
                "BACKEND_SERVICE_EDX_OAUTH2_KEY and BACKEND_SERVICE_EDX_OAUTH2_SECRET against "
                "the OAuth application in the LMS's Django admin"
            ),
        )
    if status == 401:
        return CheckResult(
            service,
            ok=False,
            summary="token rejected (HTTP 401) even after a refresh",
            hint=(
                f"{service} does not accept the LMS's JWTs: check its JWT_AUTH issuer, "
                "audience and signing keys against the LMS's"
            ),
        )
    return CheckResult(service, ok=False, summary=f"{error.reason}: {error}")


def _probe(
    service: str,
    read: Callable[[], str],
    *,
    forbidden_hint: str = _STAFF_HINT,
    not_found_ok: bool = False,
) -> CheckResult:
    try:
        summary = read()
    except RejectedError as error:
        if not_found_ok and error.status == 404:
            return CheckResult(service, ok=True, summary="reachable and authenticated (probe: 404)")
        return _failure(service, error, forbidden_hint=forbidden_hint)
    except ConsumerError as error:
        return _failure(service, error, forbidden_hint=forbidden_hint)
    return CheckResult(service, ok=True, summary=summary)


def run_checks(services: Services) -> list[CheckResult]:
    """Fetch a token, then read once from each configured service.

    Blocks; never raises a service error (each becomes a failed ``CheckResult``).
    """
    settings = services.settings

    def token() -> str:
        services.tokens.token(REQUEST_ID)
        current = services.tokens.current()
        lifetime = f", expires in {current.expires_in:.0f} s" if current else ""
        return f"JWT issued to client {settings.oauth_client_id!r}{lifetime}"

    results = [_probe("oauth", token)]
    if not results[0].ok:
        skipped = ["credentials", "lms"]
        skipped += ["studio"] if settings.studio_url else []
        skipped += ["discovery"] if settings.discovery_url else []
        return results + [
            CheckResult(name, ok=False, summary="not checked: no token") for name in skipped
        ]

    def credentials() -> str:
        found = services.credentials.list_credentials(
            username=PROBE_USERNAME, request_id=REQUEST_ID, credential_type="program"
        )
        return f"read credentials/ of another user ({len(found)} found): view permission ok"

    results.append(_probe("credentials", credentials, forbidden_hint=_VIEW_PERMISSION_HINT))

    def lms() -> str:
        modes = services.lms.course_modes(course_run=PROBE_COURSE_RUN, request_id=REQUEST_ID)
        return f"read course modes of a probe course ({len(modes)} modes)"

    results.append(_probe("lms", lms, not_found_ok=True))

    studio = services.studio
    if studio is not None:

        def course_details() -> str:
            studio.course_details(course_run=PROBE_COURSE_RUN, request_id=REQUEST_ID)
            return "read course details of a probe course"

        results.append(_probe("studio", course_details, not_found_ok=True))
    else:
        results.append(
            CheckResult(
                "studio", ok=True, summary="not configured: display behaviour assumed 'end'"
            )
        )

    discovery = services.discovery
    if discovery is not None:

        def programs() -> str:
            uuids = discovery.program_uuids(request_id=REQUEST_ID)
            return f"listed {len(uuids)} active and retired programs"

        results.append(_probe("discovery", programs))
    else:
        results.append(
            CheckResult("discovery", ok=True, summary="not configured: no program awards")
        )
    return results


def check_services(settings: ServiceSettings) -> list[CheckResult]:
    """Build the clients for ``settings``, run the checks, close the clients."""
    services = build_services(settings)
    try:
        return run_checks(services)
    finally:
        services.close()
