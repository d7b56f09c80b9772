"""Course Discovery's programs, reduced to ``consumer.programs`` values at the boundary.

Fetched the way the LMS's ``cache_programs`` does: ``GET programs/?exclude_utm=1&
status=active&status=retired&uuids_only=1`` (a flat list of UUIDs), then ``GET
programs/{uuid}/?exclude_utm=1`` per program. Only ``uuid``, ``status``, ``courses[].key``
and ``courses[].course_runs[].key``/``type`` are kept; a run's ``type`` (its seat type) is
``None`` when the run has no seats.
"""

from __future__ import annotations

from consumer.programs import Program, ProgramCourse, ProgramRun
from consumer.services.answers import AnswerReader
from consumer.services.http import HttpClient
from consumer.services.request_parts import path_segment

_LIST = AnswerReader("discovery", "programs_list")
_DETAIL = AnswerReader("discovery", "program_detail")


def parse_program(body: object, read: AnswerReader = _DETAIL) -> Program:
    """Reduce a Discovery program document to a ``Program``; ``MalformedAnswerError`` if unusable.

    ``courses`` and ``course_runs`` may be null or missing (no courses, no runs); what is
    there must have the documented types. A run without seats has a null ``type``.
    """
    document = read.mapping(body, "the answer")
    uuid = read.text(document.get("uuid"), "uuid")
    courses: list[ProgramCourse] = []
    for index, value in enumerate(read.array(document.get("courses") or [], "courses")):
        where = f"courses[{index}]"
        course = read.mapping(value, where)
        runs = tuple(
            _run(read, run, f"{where}.course_runs[{number}]")
            for number, run in enumerate(
                read.array(course.get("course_runs") or [], f"{where}.course_runs")
            )
        )
        key = read.optional_text(course.get("key"), f"{where}.key") or ""
        courses.append(ProgramCourse(key=key, runs=runs))
    status = read.optional_text(document.get("status"), "status") or "active"
    return Program(uuid=uuid, courses=tuple(courses), status=status)


def _run(read: AnswerReader, value: object, where: str) -> ProgramRun:
    run = read.mapping(value, where)
    return ProgramRun(
        key=read.text(run.get("key"), f"{where}.key"),
        seat_type=read.optional_text(run.get("type"), f"{where}.type"),
    )


class DiscoveryClient:
    """Reads programs from Discovery. Thread-safe; each method blocks for one request."""

    service = "discovery"

    def __init__(self, http: HttpClient) -> None:
        self._http = http

    def program_uuids(self, *, request_id: str) -> tuple[str, ...]:
        """UUIDs of every active and retired program. Raises the ``http`` errors."""
        reply = self._http.call(
            "GET",
            "programs/",
            endpoint="programs_list",
            request_id=request_id,
            params={
                "exclude_utm": "1",
                "status": ["active", "retired"],
                "uuids_only": "1",
            },
        )
        items = _LIST.array(reply.body, "the answer")
        return tuple(_LIST.text(uuid, f"[{index}]") for index, uuid in enumerate(items))

    def program(self, uuid: str, *, request_id: str) -> Program:
        """One program's details. Raises the ``http`` errors, ``MalformedAnswerError``."""
        reply = self._http.call(
            "GET",
            f"programs/{path_segment(uuid)}/",
            endpoint="program_detail",
            request_id=request_id,
            params={"exclude_utm": "1"},
        )
        return parse_program(reply.body)
