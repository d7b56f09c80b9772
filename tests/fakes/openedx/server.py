"""Sockets, knobs and recording around ``apps.OpenEdx``; the ``FakeOpenEdx`` facade.

One ``ThreadingHTTPServer`` (HTTP/1.1, keep-alive) on 127.0.0.1 serves all five APIs and
the ``/_fake/call`` control endpoint. With ``per_service_ports=True`` each service gets a
listener of its own (the main one keeps only the control endpoint), so one service can be
made to refuse connections while the others answer. A ``refused`` outage closes the
listening socket and every open connection; clearing it listens again on the same port.
"""

from __future__ import annotations

import contextlib
import json
import select
import socket
import struct
import threading
import time
import uuid as uuidlib
from collections.abc import Iterable, Mapping
from dataclasses import asdict, is_dataclass
from datetime import UTC, datetime
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any, ClassVar
from urllib.parse import parse_qs

from tests.fakes.openedx.apps import Answer, Call, OpenEdx, parse_datetime, route
from tests.fakes.openedx.knobs import Chaos, ErrorKnob, Fault, Knobs, Outage, OutageMode
from tests.fakes.openedx.model import (
    SERVICES,
    VIEW_USERCREDENTIAL,
    CourseCertificateConfig,
    CourseRun,
    LmsCertificate,
    OAuthClient,
    Program,
    ProgramCourse,
    RequestRecord,
    Stats,
    User,
    UserCredential,
)

DEFAULT_CLIENT_ID = "credentials-consumer"
DEFAULT_CLIENT_SECRET = "fake-client-secret"
SERVICE_USERNAME = "credentials_service_user"
SERVICE_USER_ID = 1

_ERROR_BODIES: dict[int, Any] = {
    401: {"detail": "Invalid token."},
    403: {"detail": "You do not have permission to perform this action."},
    404: {"detail": "Not found."},
    408: "<h1>Request Timeout</h1>",
    429: {"detail": "Request was throttled. Expected available in 60 seconds."},
    500: "<h1>Server Error (500)</h1>",
    502: "<html><body><h1>502 Bad Gateway</h1></body></html>",
    503: "<html><body><h1>503 Service Unavailable</h1></body></html>",
    504: "<html><body><h1>504 Gateway Time-out</h1></body></html>",
}


def _when(value: datetime | str | None) -> datetime | None:
    if value is None or isinstance(value, datetime):
        return value
    parsed = parse_datetime(value)
    if parsed is None:
        raise ValueError(f"not an ISO-8601 datetime: {value!r}")
    return parsed


def to_jsonable(value: Any) -> Any:
    """Dataclasses, tuples and datetimes as JSON values (for the control endpoint)."""
    if is_dataclass(value) and not isinstance(value, type):
        return to_jsonable(asdict(value))
    if isinstance(value, Mapping):
        return {str(key): to_jsonable(item) for key, item in value.items()}
    if isinstance(value, list | tuple | set | frozenset):
        return [to_jsonable(item) for item in value]
    if isinstance(value, datetime):
        return value.astimezone(UTC).isoformat()
    return value


class _Server(ThreadingHTTPServer):
    request_queue_size = 256  # a worker opens up to its concurrency (64+) connections at once
    daemon_threads = True
    block_on_close = False
    allow_reuse_address = True

    def handle_error(self, request: Any, client_address: Any) -> None:
        """Connections cut by outages and resets are expected: stay quiet."""


class _Listener:
    """A listening socket serving some services; can stop and listen again on its port."""

    def __init__(self, fake: FakeOpenEdx, services: frozenset[str], host: str, port: int) -> None:
        self.fake = fake
        self.services = services
        self.host = host
        self.port = port
        self._server: _Server | None = None
        self._thread: threading.Thread | None = None
        self._active: set[socket.socket] = set()
        self._lock = threading.Lock()

    @property
    def url(self) -> str:
        """``http://host:port`` of this listener."""
        return f"http://{self.host}:{self.port}"

    @property
    def running(self) -> bool:
        """Whether the listener accepts connections."""
        return self._server is not None

    def start(self) -> None:
        """Listen (on the same port as before, after a stop)."""
        if self._server is not None:
            return
        handler = type("Handler", (_Handler,), {"fake": self.fake, "listener": self})
        server = _Server((self.host, self.port), handler)
        self.port = server.server_address[1]
        self._server = server
        self._thread = threading.Thread(
            target=server.serve_forever,
            kwargs={"poll_interval": 0.05},
            name=f"fake-openedx-{self.port}",
            daemon=True,
        )
        self._thread.start()

    def stop(self) -> None:
        """Stop listening and cut every open connection (clients see refused/reset)."""
        server, self._server = self._server, None
        if server is None:
            return
        server.shutdown()
        server.server_close()
        with self._lock:
            active = list(self._active)
        for connection in active:
            with contextlib.suppress(OSError):
                connection.shutdown(socket.SHUT_RDWR)
        if self._thread is not None:
            self._thread.join(5)

    def track(self, connection: socket.socket) -> None:
        """Remember an open connection (to cut it on an outage)."""
        with self._lock:
            self._active.add(connection)

    def untrack(self, connection: socket.socket) -> None:
        """Forget a closed connection."""
        with self._lock:
            self._active.discard(connection)


class _Handler(BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"
    server_version = "FakeOpenEdx/1.0"
    fake: ClassVar[FakeOpenEdx]
    listener: ClassVar[_Listener]

    def setup(self) -> None:
        super().setup()
        # Headers and body go out as two writes; without this, Nagle + delayed ACK add 40 ms.
        self.connection.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
        self.listener.track(self.connection)

    def finish(self) -> None:
        try:
            super().finish()
        except OSError:
            pass
        finally:
            self.listener.untrack(self.connection)

    def log_message(self, format: str, *args: Any) -> None:
        """Quiet: tests assert on records, not on access logs."""

    def do_GET(self) -> None:
        """Serve a GET."""
        self._serve()

    def do_POST(self) -> None:
        """Serve a POST."""
        self._serve()

    def do_PUT(self) -> None:
        """Answer 405 (or 404) like the real services."""
        self._serve()

    def do_PATCH(self) -> None:
        """Answer 405 (or 404) like the real services."""
        self._serve()

    def do_DELETE(self) -> None:
        """Answer 405 (or 404) like the real services."""
        self._serve()

    # ------------------------------------------------------------------ plumbing

    def _read_body(self) -> bytes:
        length = int(self.headers.get("Content-Length") or 0)
        return self.rfile.read(length) if length else b""

    def _respond(self, answer: Answer) -> None:
        if isinstance(answer.body, str) and not answer.force_json:
            data = answer.body.encode()
            content_type = "text/html; charset=utf-8"
        else:
            data = json.dumps(answer.body).encode()
            content_type = "application/json"
        self.send_response(answer.status)
        self.send_header("Content-Type", content_type)
        self.send_header("Content-Length", str(len(data)))
        for name, value in answer.headers.items():
            self.send_header(name, value)
        self.end_headers()
        self.wfile.write(data)

    def _wait_for_hangup(self, seconds: float) -> None:
        """Hold the request unanswered until the client closes its end or ``seconds`` pass."""
        deadline = time.monotonic() + seconds
        while (remaining := deadline - time.monotonic()) > 0:
            try:
                readable, _, _ = select.select([self.connection], [], [], min(remaining, 0.05))
                if readable and not self.connection.recv(1, socket.MSG_PEEK):
                    return
            except OSError:
                return

    def _reset(self) -> None:
        """Abort the connection with a TCP RST instead of answering."""
        self.connection.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, struct.pack("ii", 1, 0))
        self.connection.close()
        self.close_connection = True

    def _serve(self) -> None:
        started = time.monotonic()
        raw_path, _, query_text = self.path.partition("?")
        raw = self._read_body()
        if raw_path == "/_fake/call" and self.command == "POST":
            self._respond(self.fake.control(raw))
            return
        found = route(self.command, raw_path)
        if found is None or found[0].service not in self.listener.services:
            self._respond(
                Answer(404, "<h1>Not Found</h1><p>The requested resource was not found.</p>")
            )
            return
        target, endpoint, params = found
        if endpoint is None:
            self._respond(Answer(405, {"detail": f'Method "{self.command}" not allowed.'}))
            return
        body = _parse_body(raw, self.headers.get("Content-Type", ""))
        call = Call(
            method=self.command,
            path=raw_path,
            query=parse_qs(query_text, keep_blank_values=True),
            body=body,
            host=self.headers.get("Host", f"{self.listener.host}:{self.listener.port}"),
            authorization=self.headers.get("Authorization"),
        )
        self.fake.serve(
            self,
            target.service,
            endpoint,
            call,
            params,
            started=started,
            request_id=self.headers.get("X-Request-ID"),
            user_agent=self.headers.get("User-Agent"),
        )


def _parse_body(raw: bytes, content_type: str) -> Any:
    if not raw:
        return None
    if content_type.startswith("application/x-www-form-urlencoded"):
        return {name: values[-1] for name, values in parse_qs(raw.decode()).items()}
    try:
        return json.loads(raw)
    except ValueError:
        return raw.decode(errors="replace")


class FakeOpenEdx:
    """A fake Open edX (LMS OAuth2, LMS, Studio, Discovery, Credentials) for tests.

    Start it, describe the world, point the worker at ``urls``, inject failures, assert on
    what it recorded::

        fake = FakeOpenEdx.start()
        fake.add_user("alice", 42)
        fake.add_course_run("course-v1:edX+C1+1T2026", modes=("audit", "verified"))
        fake.add_program("3f0c...", {"edX+C1": {"course-v1:edX+C1+1T2026": "verified"}})
        fake.set_outage("credentials", "refused")   # ... later: fake.clear_outage()
        fake.writes(username="alice")               # every POST, in arrival order
        fake.stop()

    Thread-safe: knobs and state may change while requests are being served.
    """

    services: ClassVar[tuple[str, ...]] = SERVICES

    def __init__(
        self,
        *,
        host: str = "127.0.0.1",
        port: int = 0,
        per_service_ports: bool = False,
        seed: int = 0,
        keep_records: bool = True,
    ) -> None:
        self.app = OpenEdx()
        self.knobs = Knobs(seed)
        self.keep_records = keep_records
        self._records: list[RequestRecord] = []
        self._records_lock = threading.Lock()
        self._in_flight = 0
        self._max_in_flight = 0
        self._learners: dict[str, int] = {}
        self._learner_max: dict[str, int] = {}
        self._token_requests = 0
        self._refused: set[str] = set()
        self._timers: list[threading.Timer] = []
        if per_service_ports:
            self._main = _Listener(self, frozenset(), host, port)
            self._by_service = {
                service: _Listener(self, frozenset({service}), host, 0) for service in SERVICES
            }
        else:
            self._main = _Listener(self, frozenset(SERVICES), host, port)
            self._by_service = dict.fromkeys(SERVICES, self._main)
        self._seed_defaults()

    # ------------------------------------------------------------------ lifecycle

    @classmethod
    def start(
        cls,
        *,
        host: str = "127.0.0.1",
        port: int = 0,
        per_service_ports: bool = False,
        seed: int = 0,
        keep_records: bool = True,
    ) -> FakeOpenEdx:
        """Create the fake and start listening (port 0: an ephemeral port)."""
        fake = cls(
            host=host,
            port=port,
            per_service_ports=per_service_ports,
            seed=seed,
            keep_records=keep_records,
        )
        for listener in fake._listeners():
            listener.start()
        return fake

    def stop(self) -> None:
        """Stop every listener and timer. Idempotent."""
        for timer in self._timers:
            timer.cancel()
        for listener in self._listeners():
            listener.stop()

    def __enter__(self) -> FakeOpenEdx:
        return self

    def __exit__(self, *exc: object) -> None:
        self.stop()

    def _listeners(self) -> list[_Listener]:
        unique = {id(listener): listener for listener in (self._main, *self._by_service.values())}
        return list(unique.values())

    @property
    def url(self) -> str:
        """The main listener (all services unless ``per_service_ports``; ``/_fake/call``)."""
        return self._main.url

    @property
    def urls(self) -> dict[str, str]:
        """Each service's root as the worker's settings want it.

        ``oauth`` ends in ``/oauth2`` (token at ``/access_token``), ``discovery`` in
        ``/api/v1``; the others are bare roots.
        """
        suffix = {"oauth": "/oauth2", "discovery": "/api/v1"}
        return {
            service: self._by_service[service].url + suffix.get(service, "") for service in SERVICES
        }

    def reset(self) -> None:
        """Back to a fresh fake: state, knobs, outages and records (the default client stays)."""
        self.clear_outage()
        self.knobs.clear()
        self.app.reset()
        self.clear_records()
        self._seed_defaults()

    def _seed_defaults(self) -> None:
        self.add_oauth_client(
            DEFAULT_CLIENT_ID,
            DEFAULT_CLIENT_SECRET,
            username=SERVICE_USERNAME,
            lms_user_id=SERVICE_USER_ID,
        )

    # ------------------------------------------------------------------ world

    def add_user(
        self,
        username: str,
        lms_user_id: int,
        *,
        is_staff: bool = False,
        is_superuser: bool = False,
        permissions: Iterable[str] = (),
        in_credentials: bool = True,
    ) -> None:
        """Add (or replace) a user; ``in_credentials=False``: Credentials has no row for it."""
        with self.app.lock:
            self.app.users[username] = User(
                username=username,
                lms_user_id=lms_user_id,
                is_staff=is_staff,
                is_superuser=is_superuser,
                permissions=frozenset(permissions),
                in_credentials=in_credentials,
            )

    def add_oauth_client(
        self,
        client_id: str,
        client_secret: str,
        *,
        username: str,
        lms_user_id: int = SERVICE_USER_ID,
        is_staff: bool = True,
        is_superuser: bool = False,
        permissions: Iterable[str] = (VIEW_USERCREDENTIAL,),
    ) -> None:
        """Add an OAuth2 application acting as ``username`` (staff, view permission)."""
        self.add_user(
            username,
            lms_user_id,
            is_staff=is_staff,
            is_superuser=is_superuser,
            permissions=permissions,
        )
        with self.app.lock:
            self.app.clients[client_id] = OAuthClient(client_id, client_secret, username)

    def set_permissions(self, username: str, permissions: Iterable[str]) -> None:
        """Replace a user's Credentials permissions while the fake runs (an operator granting).

        Tokens already issued keep working: Credentials checks permissions per request.
        """
        with self.app.lock:
            self.app.users[username].permissions = frozenset(permissions)

    def add_course_run(
        self,
        key: str,
        *,
        modes: Iterable[str] = ("audit", "verified"),
        self_paced: bool = False,
        start: datetime | str | None = None,
        end: datetime | str | None = None,
        certificate_available_date: datetime | str | None = None,
        display_behavior: str | None = "end",
        in_credentials_catalog: bool = True,
        certificates_viewable: bool = True,
    ) -> None:
        """Add (or replace) a course run as the LMS, Studio and Credentials' catalogue see it."""
        with self.app.lock:
            self.app.runs[key] = CourseRun(
                key=key,
                modes=tuple(modes),
                self_paced=self_paced,
                start=_when(start),
                end=_when(end),
                certificate_available_date=_when(certificate_available_date),
                display_behavior=display_behavior,
                in_credentials_catalog=in_credentials_catalog,
                certificates_viewable=certificates_viewable,
            )

    def add_program(
        self,
        uuid: str,
        courses: Mapping[str, Mapping[str, str | None]],
        *,
        status: str = "active",
        title: str = "",
        in_credentials: bool = True,
    ) -> None:
        """Add a program: ``{course key: {run key: seat type or None}}``.

        ``in_credentials=False``: Credentials has no active ProgramCertificate for it.
        Runs not yet known are added with default modes.
        """
        with self.app.lock:
            self.app.programs[uuid] = Program(
                uuid=uuid,
                courses=[ProgramCourse(key, dict(runs)) for key, runs in courses.items()],
                status=status,
                title=title,
                in_credentials=in_credentials,
            )
            for runs in courses.values():
                for run in runs:
                    self.app.runs.setdefault(run, CourseRun(key=run))

    def add_lms_certificate(
        self,
        username: str,
        course_id: str,
        *,
        mode: str = "verified",
        status: str = "downloadable",
        grade: str = "0.9",
    ) -> None:
        """Add (or replace) a learner's certificate in the LMS."""
        now = datetime.now(UTC)
        with self.app.lock:
            self.app.certificates[(username, course_id)] = LmsCertificate(
                username=username,
                course_id=course_id,
                mode=mode,
                status=status,
                grade=grade,
                uuid=uuidlib.uuid4().hex,
                created=now,
                modified=now,
            )

    def add_credential(
        self,
        username: str,
        *,
        course_run: str | None = None,
        program_uuid: str | None = None,
        mode: str | None = None,
        status: str = "awarded",
        lms_user_id: int | None = None,
    ) -> None:
        """Put a credential straight into Credentials (not recorded as a write)."""
        kind, key = ("program", program_uuid) if program_uuid else ("course-run", course_run)
        if not key:
            raise ValueError("give course_run or program_uuid")
        now = datetime.now(UTC)
        with self.app.lock:
            if kind == "course-run" and mode:
                # Filed as Credentials files it: under the run's one config (made with this
                # mode when the run has none); reads answer the config's type.
                self.app.run_config(key, mode)
            self.app.credentials[(username, kind, key)] = UserCredential(
                uuid=uuidlib.uuid4().hex,
                username=username,
                type=kind,
                key=key,
                status=status,
                mode=mode if kind == "course-run" else None,
                created=now,
                modified=now,
                lms_user_id=lms_user_id,
            )

    def add_course_certificate_config(
        self,
        course_id: str,
        certificate_type: str,
        *,
        certificate_available_date: datetime | str | None = None,
        is_active: bool = True,
    ) -> None:
        """Put a course-certificate config straight into Credentials."""
        with self.app.lock:
            self.app.configs[course_id] = CourseCertificateConfig(
                course_id=course_id,
                certificate_type=certificate_type,
                certificate_available_date=_when(certificate_available_date),
                is_active=is_active,
                id=len(self.app.configs) + 1000,
            )

    def credentials(self, username: str | None = None) -> list[UserCredential]:
        """Credentials' user credentials now (copies), optionally of one learner."""
        with self.app.lock:
            return [
                UserCredential(**asdict(stored))
                for stored in self.app.credentials.values()
                if username is None or stored.username == username
            ]

    def course_certificate_configs(self) -> dict[str, CourseCertificateConfig]:
        """Credentials' course-certificate configs now (copies), by run key."""
        with self.app.lock:
            return {
                key: CourseCertificateConfig(**asdict(config))
                for key, config in self.app.configs.items()
            }

    # ------------------------------------------------------------------ service settings

    def set_token_lifetime(self, seconds: float) -> None:
        """``expires_in`` of tokens issued from now on."""
        self.app.token_lifetime = seconds

    def expire_tokens(self) -> None:
        """Every token issued so far answers 401 "Token has expired." from now on."""
        with self.app.lock:
            self.app.token_generation += 1

    def set_program_not_configured_status(self, status: int) -> None:
        """400 (current Credentials) or 404 (older deployments) for unconfigured programs."""
        self.app.program_not_configured_status = status

    def set_throttle_rate(self, per_minute: int) -> None:
        """Non-staff requests a minute on credential views before 429 (default 15)."""
        self.app.throttle_rate = per_minute

    # ------------------------------------------------------------------ knobs

    def set_latency(self, service: str, seconds: float, *, endpoint: str | None = None) -> None:
        """Delay answers of ``service`` (or one endpoint) by ``seconds``; 0 removes it."""
        self.knobs.set_latency(service, seconds, endpoint)

    def set_error(
        self,
        service: str,
        status: int,
        *,
        endpoint: str | None = None,
        rate: float = 1.0,
        times: int | None = None,
        retry_after: str | float | None = None,
        username: str | None = None,
    ) -> None:
        """Answer ``status`` instead of serving (probability ``rate``; ``times`` then stop).

        ``username``: only requests about that learner (a learner whose writes always fail).
        """
        self.knobs.set_error(
            service,
            ErrorKnob(
                status=status,
                rate=rate,
                times=times,
                retry_after=None if retry_after is None else str(retry_after),
            ),
            endpoint,
            username,
        )

    def set_answer(
        self,
        service: str,
        body: Any,
        *,
        endpoint: str | None = None,
        status: int = 200,
        times: int | None = None,
    ) -> None:
        """Answer ``body`` as JSON (any shape, even a bare string) instead of serving.

        Failure injection for malformed answers; ``clear_error`` removes it.
        """
        self.knobs.set_error(service, ErrorKnob(status=status, times=times, body=body), endpoint)

    def clear_error(
        self, service: str, *, endpoint: str | None = None, username: str | None = None
    ) -> None:
        """Remove an error knob."""
        self.knobs.set_error(service, None, endpoint, username)

    def set_outage(
        self,
        service: str,
        mode: OutageMode,
        *,
        duration: float | None = None,
        retry_after: str | float | None = None,
    ) -> None:
        """Take ``service`` down: ``refused`` (stop listening), ``reset`` (RST), ``503``.

        ``refused`` stops the listener serving the service — without ``per_service_ports``
        that is every service (the whole host gone). ``duration`` restores it by itself
        (needed when the control endpoint is down too).
        """
        self.knobs.set_outage(
            service, Outage(mode, None if retry_after is None else str(retry_after))
        )
        if mode == "refused":
            self._refused.add(service)
            self._by_service[service].stop()
        if duration is not None:
            timer = threading.Timer(duration, self.clear_outage, args=(service,))
            timer.daemon = True
            self._timers.append(timer)
            timer.start()

    def clear_outage(self, service: str | None = None) -> None:
        """End the outage of ``service`` (every service when ``None``); same ports again."""
        targets = list(SERVICES) if service is None else [service]
        for name in targets:
            self.knobs.set_outage(name, None)
            self._refused.discard(name)
        for listener in self._listeners():
            if not listener.services & self._refused:
                listener.start()

    def clear_knobs(self) -> None:
        """Remove every latency, error and outage knob."""
        self.clear_outage()
        self.knobs.clear()

    def set_chaos(
        self,
        service: str,
        *,
        error_rate: float = 0.0,
        statuses: Iterable[int] = (500, 502, 503, 504),
        timeout_rate: float = 0.0,
        timeout_seconds: float = 30.0,
        reset_rate: float = 0.0,
    ) -> None:
        """Random failures of every request of ``service``, at these rates (see ``Chaos``)."""
        codes = tuple(statuses)
        if unknown := [code for code in codes if code not in _ERROR_BODIES]:
            raise ValueError(f"no error body for status {unknown}")
        if error_rate + timeout_rate + reset_rate > 1:
            raise ValueError("the rates add up to more than 1")
        self.knobs.set_chaos(
            service,
            Chaos(
                error_rate=error_rate,
                statuses=codes,
                timeout_rate=timeout_rate,
                timeout_seconds=timeout_seconds,
                reset_rate=reset_rate,
            ),
        )

    def clear_chaos(self, service: str | None = None) -> None:
        """Stop the random failures of ``service`` (every service when ``None``)."""
        for name in SERVICES if service is None else (service,):
            self.knobs.set_chaos(name, None)

    # ------------------------------------------------------------------ records

    def requests(
        self, *, service: str | None = None, endpoint: str | None = None
    ) -> list[RequestRecord]:
        """Every request received (arrival order of completion), optionally filtered."""
        with self._records_lock:
            records = list(self._records)
        return [
            record
            for record in records
            if (service is None or record.service == service)
            and (endpoint is None or record.endpoint == endpoint)
        ]

    def writes(
        self,
        *,
        service: str | None = None,
        endpoint: str | None = None,
        username: str | None = None,
        lms_user_id: int | None = None,
        successful: bool | None = None,
    ) -> list[RequestRecord]:
        """Every write (POST to a service API), ordered by when it started."""
        found = [
            record
            for record in self.requests(service=service, endpoint=endpoint)
            if record.is_write
            and (username is None or record.username == username)
            and (lms_user_id is None or record.lms_user_id == lms_user_id)
            and (
                successful is None
                or (record.status is not None and 200 <= record.status < 300) == successful
            )
        ]
        return sorted(found, key=lambda record: record.started)

    def save_records(self, path: str) -> int:
        """Write every request record to ``path`` as JSON lines; return how many."""
        with self._records_lock:
            records = list(self._records)
        with open(path, "w", encoding="utf-8") as out:
            for record in records:
                out.write(json.dumps(to_jsonable(record)) + "\n")
        return len(records)

    def issued_tokens(self) -> list[str]:
        """Every access token the OAuth endpoint has issued (to check none leaks)."""
        with self.app.lock:
            return list(self.app.issued_tokens)

    def stats(self) -> Stats:
        """Volume and concurrency since the last reset."""
        with self._records_lock:
            return Stats(
                requests=len(self._records),
                token_requests=self._token_requests,
                max_in_flight=self._max_in_flight,
                max_in_flight_per_learner=dict(self._learner_max),
            )

    def clear_records(self) -> None:
        """Forget recorded requests and concurrency maxima."""
        with self._records_lock:
            self._records.clear()
            self._max_in_flight = self._in_flight
            self._learner_max.clear()
            self._token_requests = 0

    # ------------------------------------------------------------------ serving

    def _identify(
        self, endpoint: str, call: Call, params: Mapping[str, str]
    ) -> tuple[str | None, str | None, str | None]:
        """(learner username, course run, program uuid) a request is about."""
        body: dict[str, Any] = call.body if isinstance(call.body, dict) else {}
        raw_credential = body.get("credential")
        credential: dict[str, Any] = raw_credential if isinstance(raw_credential, dict) else {}
        if endpoint == "credentials_post":
            return (
                body.get("username"),
                credential.get("course_run_key"),
                credential.get("program_uuid"),
            )
        if endpoint == "course_certificates_post":
            return None, body.get("course_id"), None
        if endpoint == "credentials_list":
            return call.param("username"), None, call.param("program_uuid")
        return params.get("username"), params.get("course_id"), params.get("uuid")

    def serve(
        self,
        handler: _Handler,
        service: str,
        endpoint: str,
        call: Call,
        params: Mapping[str, str],
        *,
        started: float,
        request_id: str | None,
        user_agent: str | None = None,
    ) -> None:
        """Apply knobs, serve, record and answer one request (on the handler's thread).

        The request is recorded and leaves the in-flight count *before* its answer is
        written, so a client that has its answer always finds it in ``requests()``, and
        a learner's next request is never counted as overlapping this one.
        """
        username, course_run, program_uuid = self._identify(endpoint, call, params)
        self._enter(username)
        answer: Answer | None = None
        fault: Fault | None = None
        try:
            answer, fault = self._answer(service, endpoint, call, params, username)
            if fault == "timeout":
                handler._wait_for_hangup(self.knobs.chaos_timeout(service))
        finally:
            self._leave(username)
            self._record(
                service=service,
                endpoint=endpoint,
                call=call,
                status=answer.status if answer else None,
                request_id=request_id,
                identity=(username, course_run, program_uuid),
                started=started,
                user_agent=user_agent,
                fault=fault,
            )
        if answer is None:
            handler._reset()
        else:
            handler._respond(answer)

    def _answer(
        self,
        service: str,
        endpoint: str,
        call: Call,
        params: Mapping[str, str],
        username: str | None = None,
    ) -> tuple[Answer | None, Fault | None]:
        """The answer after knobs (``None``: reset the connection instead), and the fault."""
        outage = self.knobs.outage(service)
        if outage is not None and outage.mode in ("reset", "refused"):
            return None, "outage"
        if outage is not None:
            headers = {"Retry-After": outage.retry_after} if outage.retry_after else {}
            return Answer(503, _ERROR_BODIES[503], headers), "outage"
        delay = self.knobs.latency(service, endpoint)
        if delay > 0:
            time.sleep(delay)
        knob = self.knobs.draw_error(service, endpoint, username)
        if knob:
            return self._injected(knob), "error"
        chaos = self.knobs.draw_chaos(service)
        if chaos is not None:
            fault, status = chaos
            if fault == "error":
                return Answer(status, _ERROR_BODIES[status]), fault
            return None, fault
        return self._dispatch(service, endpoint, call, params), None

    @staticmethod
    def _injected(knob: ErrorKnob) -> Answer:
        headers = {"Retry-After": knob.retry_after} if knob.retry_after else {}
        if knob.status == 401:
            headers["WWW-Authenticate"] = 'JWT realm="api"'
        if knob.body is not None:
            return Answer(knob.status, knob.body, headers, force_json=True)
        return Answer(
            knob.status, _ERROR_BODIES.get(knob.status, {"detail": "Injected error."}), headers
        )

    def _dispatch(
        self, service: str, endpoint: str, call: Call, params: Mapping[str, str]
    ) -> Answer:
        if service == "oauth":
            with self._records_lock:
                self._token_requests += 1
            return self.app.issue_token(call)
        user = self.app.authenticate(call)
        if isinstance(user, Answer):
            return user
        return self.app.handler(endpoint)(call, user, **params)

    def _enter(self, username: str | None) -> None:
        with self._records_lock:
            self._in_flight += 1
            self._max_in_flight = max(self._max_in_flight, self._in_flight)
            if username:
                count = self._learners.get(username, 0) + 1
                self._learners[username] = count
                self._learner_max[username] = max(self._learner_max.get(username, 0), count)

    def _leave(self, username: str | None) -> None:
        with self._records_lock:
            self._in_flight -= 1
            if username:
                self._learners[username] -= 1

    def _record(
        self,
        *,
        service: str,
        endpoint: str,
        call: Call,
        status: int | None,
        request_id: str | None,
        identity: tuple[str | None, str | None, str | None],
        started: float,
        user_agent: str | None,
        fault: Fault | None = None,
    ) -> None:
        username, course_run, program_uuid = identity
        payload = call.body
        if isinstance(payload, dict) and "client_secret" in payload:
            payload = {**payload, "client_secret": "***"}
        user = self.app.users.get(username) if username else None
        body = call.body if isinstance(call.body, dict) else {}
        lms_user_id = body.get("lms_user_id") if endpoint == "credentials_post" else None
        record = RequestRecord(
            service=service,
            endpoint=endpoint,
            method=call.method,
            status=status,
            request_id=request_id,
            username=username,
            lms_user_id=int(lms_user_id)
            if lms_user_id is not None
            else (user.lms_user_id if user else None),
            course_run=course_run,
            program_uuid=program_uuid,
            payload=payload,
            started=started,
            ended=time.monotonic(),
            thread=threading.current_thread().name,
            user_agent=user_agent,
            fault=fault,
        )
        with self._records_lock:
            if self.keep_records:
                self._records.append(record)

    # ------------------------------------------------------------------ control

    CONTROL_METHODS: ClassVar[frozenset[str]] = frozenset(
        {
            "reset",
            "add_user",
            "add_oauth_client",
            "add_course_run",
            "add_program",
            "add_lms_certificate",
            "add_credential",
            "add_course_certificate_config",
            "credentials",
            "course_certificate_configs",
            "set_token_lifetime",
            "expire_tokens",
            "set_program_not_configured_status",
            "set_throttle_rate",
            "set_latency",
            "set_error",
            "set_answer",
            "clear_error",
            "set_outage",
            "clear_outage",
            "clear_knobs",
            "set_chaos",
            "clear_chaos",
            "requests",
            "writes",
            "stats",
            "clear_records",
            "save_records",
            "issued_tokens",
            "call_many",
            "urls",
        }
    )

    def call_many(self, calls: list[dict[str, Any]]) -> int:
        """Run control calls (``{"method", "kwargs"}``) in order, to set up a world at once."""
        for call in calls:
            answer = self.control(json.dumps(call).encode())
            if answer.status != 200:
                raise ValueError(f"{call.get('method')}: {answer.body}")
        return len(calls)

    def control(self, raw: bytes) -> Answer:
        """``POST /_fake/call {"method": name, "kwargs": {...}}``: drive the fake remotely."""
        try:
            request = json.loads(raw or b"{}")
            name = request["method"]
            kwargs = request.get("kwargs") or {}
        except (ValueError, KeyError, TypeError):
            return Answer(400, {"error": 'expected {"method": ..., "kwargs": {...}}'})
        if name not in self.CONTROL_METHODS:
            return Answer(404, {"error": f"unknown method {name!r}"})
        target = getattr(self, name)
        try:
            result = target(**kwargs) if callable(target) else target
        except (TypeError, ValueError) as error:
            return Answer(400, {"error": str(error)})
        return Answer(200, {"result": to_jsonable(result)})
