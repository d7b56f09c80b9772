"""The worker's one error tree, sorted by what the engine does with each branch.

::

    ConsumerError
    ├── ConfigError             bad settings: start-up stops, exit code 2, names the variable
    │   └── ConfigErrors            every ConfigError one ``config.load`` found, together
    ├── UsageError              the command line asks for the impossible: exit code 2
    ├── ExplainError            ``explain`` cannot answer (an unknown program): exit code 1
    ├── DecodeError             poison input: dead letter at once (stage "decode")
    │   ├── FramingError            value is not Confluent-framed Avro (magic byte, length)
    │   ├── UnknownSchemaError      the registry has no schema with that id
    │   ├── InvalidWriterSchemaError  the registry's schema for that id cannot be used (cached)
    │   ├── AvroDecodeError         truncated, garbage or trailing bytes in the Avro body
    │   ├── HeaderError             ce_type / ce_id missing, repeated or not UTF-8
    │   ├── UnknownEventTypeError   a ce_type this worker does not consume
    │   └── InvalidEventError       a field the rules need is missing or invalid (course key,
    │                               a date with no UTC form)
    ├── PermanentError          rejected by a service (4xx): dead letter (stage "apply")
    │   └── RejectedError           a 4xx or 3xx answer, with its parsed body (a skip is
    │                               told apart by it: "No active ProgramCertificate")
    ├── TransientError          may succeed later: retry with backoff, then the circuit
    │   ├── ServiceUnavailableError   connection refused/reset, connect timeout, 502/503/504
    │   │   └── AuthRejectedError       401 after a token refresh, or 403: the worker's own
    │   │                               client is wrong, for every event alike (outage-class)
    │   ├── MalformedAnswerError      a 2xx the worker cannot use: not JSON, too large, or
    │   │                             not the documented shape (not an outage)
    │   ├── CircuitOpenError          the service's circuit is open; no request was sent
    │   └── RegistryUnavailableError  the schema registry cannot be reached (decode waits)
    ├── RetriesExhausted        a transient error outlived its retry budget: dead letter
    │                           (stage "apply"), with the last error's class and reason
    └── (a skip is not an error: handlers and effects return it as a value with a reason)

    Exception (outside ConsumerError: not an event's failure, never caught as one)
    ├── Cancelled               control flow: the event's work was cancelled (partition
    │                           released, shutdown); no new request starts, it is abandoned
    └── WorkerCrashedError      a processor raised instead of returning an outcome: a bug;
                                the loop commits what is done and re-raises (exit 1, traceback)

Every ``ConsumerError`` carries a short snake_case ``reason`` that goes into metrics and
dead-letter headers: a class default, or the constructor's ``reason=`` (never set
afterwards). The service errors derive it from the HTTP status (``http_429``) unless one is
given. Messages never contain a username, e-mail or full name.

``services.classify`` is where ``requests``' exceptions and HTTP statuses become these
classes; Kafka's errors become ``ConsumerError`` with a reason where they are met.
"""

from __future__ import annotations

from collections.abc import Sequence


class ConsumerError(Exception):
    """Base of every error the worker raises on purpose."""

    reason: str = "error"

    def __init__(self, message: str, *, reason: str | None = None) -> None:
        super().__init__(message)
        if reason is not None:
            self.reason = reason


class ConfigError(ConsumerError):
    """A setting is missing or invalid; the message names the environment variable."""

    reason = "config"

    def __init__(self, variable: str, problem: str) -> None:
        super().__init__(f"{variable}: {problem}")
        self.variable = variable


class ConfigErrors(ConfigError):
    """Every configuration error found by one ``load``, reported together.

    ``variable`` is the first error's variable; ``errors`` holds them all, one message each.
    """

    def __init__(self, errors: Sequence[ConfigError]) -> None:
        ConsumerError.__init__(self, "\n".join(str(error) for error in errors))
        self.variable = errors[0].variable
        self.errors = tuple(errors)


class UsageError(ConsumerError):
    """The command line asks for something impossible (exit 2, like an argparse error)."""

    reason = "usage"


class ExplainError(ConsumerError):
    """``explain`` cannot answer (a program Discovery does not know, ...): exit 1."""

    reason = "explain_failed"


# ------------------------------------------------------------------------ decode (poison)


class DecodeError(ConsumerError):
    """The record cannot become an event; retrying cannot help."""

    reason = "decode"


class FramingError(DecodeError):
    """The value is not Confluent-framed (magic byte 0, 4-byte schema id, Avro body)."""

    reason = "bad_framing"


class UnknownSchemaError(DecodeError):
    """The schema registry answered that no schema has this id."""

    reason = "unknown_schema_id"


class InvalidWriterSchemaError(DecodeError):
    """The registry's schema for the record's id cannot be used, so no record of that id can.

    ``invalid_writer_schema``: the text is not an Avro schema fastavro can parse.
    ``unbounded_writer_schema``: it parses, but decoding with it could not be bounded (see
    ``consumer.writer_schema``). Either way the verdict is the schema's, kept for its id.
    """

    reason = "invalid_writer_schema"


class AvroDecodeError(DecodeError):
    """The Avro body does not decode with its writer schema (truncated, garbage, trailing)."""

    reason = "undecodable_avro"


class HeaderError(DecodeError):
    """A required CloudEvent header is missing, repeated or not text."""

    reason = "bad_header"


class UnknownEventTypeError(DecodeError):
    """The ``ce_type`` header names an event type this worker does not consume."""

    reason = "unknown_event_type"


class InvalidEventError(DecodeError):
    """The event decoded but a field is missing or invalid (e.g. the course key)."""

    reason = "invalid_event"


# ------------------------------------------------------------------------ apply


def _status_reason(status: int | None, reason: str | None) -> str | None:
    """``reason`` if given, else ``http_<status>`` for an answer, else None (the class's)."""
    if reason is not None:
        return reason
    return f"http_{status}" if status else None


class PermanentError(ConsumerError):
    """A service rejected the request for good (4xx other than throttling or a skip)."""

    reason = "rejected"

    def __init__(
        self,
        message: str,
        *,
        service: str,
        status: int | None = None,
        reason: str | None = None,
    ) -> None:
        super().__init__(message, reason=_status_reason(status, reason))
        self.service = service
        self.status = status


class RejectedError(PermanentError):
    """The service answered with a status that retrying cannot change (4xx, 3xx).

    ``body`` is the parsed JSON answer (or a short text) for callers that must tell cases
    apart; it is not part of the message.
    """

    def __init__(
        self, message: str, *, service: str, status: int, endpoint: str, body: object
    ) -> None:
        super().__init__(message, service=service, status=status)
        self.endpoint = endpoint
        self.body = body


class TransientError(ConsumerError):
    """The call may succeed later: retried with backoff, honouring ``retry_after``.

    Every subclass takes the same keywords, so a failure can be restated with a longer
    message as its own class (``effects`` names the programs that failed).
    """

    reason = "transient"

    def __init__(
        self,
        message: str,
        *,
        service: str,
        status: int | None = None,
        retry_after: float | None = None,
        reason: str | None = None,
    ) -> None:
        super().__init__(message, reason=_status_reason(status, reason))
        self.service = service
        self.status = status
        self.retry_after = retry_after


class ServiceUnavailableError(TransientError):
    """The service is not there at all: a sign of an outage, not of a bad request."""

    reason = "unavailable"


class AuthRejectedError(ServiceUnavailableError):
    """401 (after a token refresh) or 403: the worker's own client or permissions are wrong.

    Not the event's fault, and the same for every event: it is outage-class, so the circuit
    opens and consumption pauses until an operator fixes the client (a rotated secret, a
    missing ``view_usercredential`` grant) instead of dead-lettering the whole backlog.
    """


class MalformedAnswerError(TransientError):
    """A 2xx answer the worker cannot use: not JSON, too large, or not the documented shape.

    Transient and not an outage: a proxy or a deployment in the middle of an upgrade may
    answer so for a while, so it is retried; an event whose answers stay malformed runs
    down its own budget and is dead-lettered. The message names where the answer is wrong,
    never a value from it.
    """

    reason = "malformed_answer"


class CircuitOpenError(TransientError):
    """The service's circuit is open: no request was sent, the caller should wait."""

    reason = "circuit_open"


class RegistryUnavailableError(TransientError):
    """The schema registry cannot be reached; the record is decoded again later."""

    reason = "registry_unavailable"


class RetriesExhausted(ConsumerError):
    """The last transient error of a call, after its retry budget ran out.

    It takes the last error's ``reason``; ``error`` is that error (its class names the
    dead letter), with the attempts made and the first and last failure times.
    """

    def __init__(
        self, error: TransientError, *, attempts: int, first_failure: float, last_failure: float
    ) -> None:
        super().__init__(str(error), reason=error.reason)
        self.error = error
        self.attempts = attempts
        self.first_failure = first_failure
        self.last_failure = last_failure


# ------------------------------------------------------------------------ not failures


class Cancelled(Exception):
    """The work was cancelled before it was done; no new request was started for it."""


class WorkerCrashedError(Exception):
    """A processor raised instead of returning an outcome: a bug, so the process stops."""
