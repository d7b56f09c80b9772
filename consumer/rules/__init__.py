"""Every decision of the seed tasks, as pure functions: values in, values out.

The seed is edx-platform's ``openedx/core/djangoapps/programs/tasks.py`` and ``signals.py``,
with the helpers they call (``course_modes/models.py``, ``certificates/models.py`` and
``data.py``, ``programs/utils.py``). One module per seed area; each function names the seed
rule it reproduces, and where the seed is ambiguous or wrong the choice is written next to
the code:

- ``modes``: the shared vocabulary of modes and certificate statuses;
- ``course_certificate``: whether and how a course certificate is synced;
- ``program_completion``: which certificates count, which programs they complete;
- ``program_awards``: which completed programs are awarded, which are revoked;
- ``available_date``: a run's certificate available date and certificate type.

No I/O, no clock, no configuration reads, no logging: the caller passes every setting as an
argument and logs or counts what comes back. A decision not to act is a ``Skip`` value with
a snake_case ``reason`` (a metric label) and a ``detail`` for people; neither ever holds a
username, e-mail or full name. Callers use the names below (``rules.check_program``).
"""

from __future__ import annotations

from consumer.rules.available_date import (
    EARLY_NO_INFO,
    END,
    END_WITH_DATE,
    AvailableDate,
    certificate_available_date,
    certificate_type,
)
from consumer.rules.course_certificate import course_certificate_skip, course_certificate_status
from consumer.rules.modes import (
    AUDIT,
    AUDIT_STATUSES,
    CERTIFICATE_RELEVANT_MODES,
    CREDENTIALS_CERTIFICATE_TYPES,
    DOWNLOADABLE,
    GENERATING,
    HONOR,
    certificate_mode,
    is_certificate_mode,
    is_mode_eligible,
    is_passing_status,
    run_seat_type,
)
from consumer.rules.program_awards import (
    ALL_PROGRAMS,
    ProgramExclusion,
    award_skip,
    awarding_disabled,
    canonical_uuid,
    programs_to_award,
    programs_to_revoke,
    revoke_skip,
)
from consumer.rules.program_completion import (
    CourseCheck,
    ProgramCheck,
    RunCheck,
    check_program,
    completable_programs,
    completed_programs,
    completion_skip,
    counted_certificates,
    event_certificate,
    is_program_complete,
)
from consumer.rules.skip import Skip

__all__ = [
    "ALL_PROGRAMS",
    "AUDIT",
    "AUDIT_STATUSES",
    "CERTIFICATE_RELEVANT_MODES",
    "CREDENTIALS_CERTIFICATE_TYPES",
    "DOWNLOADABLE",
    "EARLY_NO_INFO",
    "END",
    "END_WITH_DATE",
    "GENERATING",
    "HONOR",
    "AvailableDate",
    "CourseCheck",
    "ProgramCheck",
    "ProgramExclusion",
    "RunCheck",
    "Skip",
    "award_skip",
    "awarding_disabled",
    "canonical_uuid",
    "certificate_available_date",
    "certificate_mode",
    "certificate_type",
    "check_program",
    "completable_programs",
    "completed_programs",
    "completion_skip",
    "counted_certificates",
    "course_certificate_skip",
    "course_certificate_status",
    "event_certificate",
    "is_certificate_mode",
    "is_mode_eligible",
    "is_passing_status",
    "is_program_complete",
    "programs_to_award",
    "programs_to_revoke",
    "revoke_skip",
    "run_seat_type",
]
