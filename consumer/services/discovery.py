"""Course Discovery's programs, reduced to ``consumer.programs`` values at the boundary.

Fetched the way the LMS's ``cache_programs`` does: ``GET programs/?exclude_utm=1&
status=active&status=retired&uuids_only=1`` (a flat list of UUIDs), then ``GET
programs/{uuid}/?exclude_utm=1`` per program. Only ``uuid``, ``status``, ``courses[].key``
and ``courses[].course_runs[].key``/``type`` are kept; a run's ``type`` (its seat type) is
``None`` when the run has no seats.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from consumer.errors import TransientError
from consumer.programs import Program, ProgramCourse, ProgramRun
from consumer.services.http import HttpClient, path_segment


def parse_program(body: Mapping[str, Any]) -> Program:
    """Reduce a Discovery program document to a ``Program``; raises ``ValueError`` if unusable."""
    uuid = body.get("uuid")
    if not isinstance(uuid, str) or not uuid:
        raise ValueError("program without uuid")
    courses: list[ProgramCourse] = []
    for course in body.get("courses") or ():
        if not isinstance(course, dict):
            continue
        runs = tuple(
            ProgramRun(key=str(run["key"]), seat_type=run.get("type") or None)
            for run in course.get("course_runs") or ()
            if isinstance(run, dict) and run.get("key")
        )
        courses.append(ProgramCourse(key=str(course.get("key") or ""), runs=runs))
    return Program(uuid=uuid, courses=tuple(courses), status=str(body.get("status") or "active"))


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
        if not isinstance(reply.body, list):
            raise TransientError(
                "discovery answered the program list without a list", service="discovery"
            )
        return tuple(str(uuid) for uuid in reply.body if uuid)

    def program(self, uuid: str, *, request_id: str) -> Program:
        """One program's details. Raises the ``http`` errors, ``TransientError`` if unreadable."""
        reply = self._http.call(
            "GET",
            f"programs/{path_segment(uuid)}/",
            endpoint="program_detail",
            request_id=request_id,
            params={"exclude_utm": "1"},
        )
        if not isinstance(reply.body, dict):
            raise TransientError(
                "discovery answered a program without an object", service="discovery"
            )
        try:
            return parse_program(reply.body)
        except (ValueError, KeyError, TypeError) as error:
            raise TransientError(
                f"discovery program unreadable: {error}", service="discovery"
            ) from None
