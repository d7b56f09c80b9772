"""Where program completion reads the learner's certificates: the two completion sources.

Completion never takes a learner's mode from Credentials: Credentials answers a run's config
type as every credential's mode (ADR 0007). The event's own run counts with the event's mode
and status. With ``credentials`` (default) *which* other runs the learner holds comes from
Credentials' awarded ``course-run`` credentials (sees certificates before they are viewable,
misses orgs whose course sync is disabled), and their modes from the LMS — its certificates
list, and the per-run certificate for a run the list leaves out because it is not yet
viewable — only for runs of programs the held runs could complete. With ``lms`` the LMS
certificates list is the whole source (every org, but only certificates already viewable).
"""

from __future__ import annotations

from collections.abc import Callable
from functools import partial
from typing import assert_never

from consumer import rules
from consumer.programs import CompletionSource, LearnerCertificate, PassingCertificate, Program
from consumer.services.bundle import Services
from consumer.services.program_cache import ProgramCache

Completion = Callable[
    [str, PassingCertificate | None, ProgramCache, str],
    tuple[tuple[PassingCertificate, ...], tuple[Program, ...]],
]
"""(username, the event's certificate, cache, request id) -> (passing certificates, candidates)."""


def completion(source: CompletionSource, services: Services) -> Completion:
    """The completion reader of ``source``, chosen once (``Policy.completion_source``)."""
    match source:
        case "credentials":
            return partial(_from_credentials, services)
        case "lms":
            return partial(_from_lms, services)
        case unknown:
            assert_never(unknown)


def _from_credentials(
    services: Services,
    username: str,
    own: PassingCertificate | None,
    cache: ProgramCache,
    request_id: str,
) -> tuple[tuple[PassingCertificate, ...], tuple[Program, ...]]:
    """Held runs from Credentials; modes from the event (its run) and the LMS (others).

    The LMS is asked only when a program the held runs could complete has a run other than
    the event's: one list request, plus one per such run the list leaves out.
    """
    held = services.credentials.awarded_course_runs(username=username, request_id=request_id)
    mine = frozenset({own.course_run}) if own is not None else frozenset[str]()
    runs = held | mine
    if not runs:
        return (), ()
    candidates = rules.completable_programs(cache.programs_for_runs(runs), runs)
    needed = frozenset(run for program in candidates for run in program.run_keys())
    found = _lms_certificates(services, username, (needed & held) - mine, request_id)
    passing = rules.counted_certificates(found, source="credentials", held_runs=held, own=own)
    return passing, candidates


def _lms_certificates(
    services: Services, username: str, runs: frozenset[str], request_id: str
) -> tuple[LearnerCertificate, ...]:
    """The learner's LMS certificates in ``runs``, with the LMS's modes and statuses.

    The list first (passing, viewable only); a run it leaves out is read on its own (not
    yet viewable, or not passing). ``rules.counted_certificates`` judges them.
    """
    if not runs:
        return ()
    lms = services.lms
    listed = {
        cert.course_id: cert.as_learner(listed=True)
        for cert in lms.certificates(username=username, request_id=request_id)
        if cert.course_id in runs
    }
    found = list(listed.values())
    for run in sorted(runs - listed.keys()):
        cert = lms.certificate(username=username, course_run=run, request_id=request_id)
        if cert is not None:
            found.append(cert.as_learner(listed=False))
    return tuple(found)


def _from_lms(
    services: Services,
    username: str,
    own: PassingCertificate | None,
    cache: ProgramCache,
    request_id: str,
) -> tuple[tuple[PassingCertificate, ...], tuple[Program, ...]]:
    """The LMS certificates list, with the event's own certificate for its run."""
    listed = tuple(
        cert.as_learner(listed=True)
        for cert in services.lms.certificates(username=username, request_id=request_id)
    )
    passing = rules.counted_certificates(listed, source="lms", held_runs=frozenset(), own=own)
    return passing, cache.programs_for_runs(cert.course_run for cert in passing)
