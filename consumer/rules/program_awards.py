"""Program credentials: which completed programs to award, and which to revoke.

Seed: ``award_program_certificates`` and ``revoke_program_certificates``, with the
``PROGRAMS_WITHOUT_CERTIFICATES`` list. UUIDs are compared in one spelling
(``canonical_uuid``).
"""

from __future__ import annotations

import uuid
from collections.abc import Iterable
from typing import Final, Literal

from consumer.programs import Program
from consumer.rules.skip import Skip

ALL_PROGRAMS: Final = "ALL"
ProgramExclusion = frozenset[str] | Literal["ALL"]
"""``PROGRAMS_WITHOUT_CERTIFICATES``: program UUIDs never awarded, or ``"ALL"`` (no awards)."""


def canonical_uuid(value: str) -> str:
    """Spell a program UUID one way, so UUIDs compare by value (case, hyphens, braces).

    The seed compares raw strings; Discovery and Credentials agree on the spelling, but an
    operator's ``PROGRAMS_WITHOUT_CERTIFICATES`` may not, and a silent miss there awards a
    program that should never be. Text that is not a UUID is compared as given, lowercased.
    """
    try:
        return str(uuid.UUID(value.strip()))
    except ValueError:
        return value.strip().lower()


def awarding_disabled(excluded: ProgramExclusion) -> bool:
    """Whether ``PROGRAMS_WITHOUT_CERTIFICATES`` turns program awards off (seed: early return).

    ``ALL`` in any case, given as the value or as a member of the set: the seed compares the
    list's first item lowercased; a set has no first item, and no program UUID is "all".
    """
    if isinstance(excluded, str):
        return excluded.strip().lower() == "all"
    return any(value.strip().lower() == "all" for value in excluded)


def award_skip(
    program_uuid: str, *, awarded: Iterable[str], excluded: ProgramExclusion
) -> Skip | None:
    """Why a completed program is not awarded, or None to award it.

    Seed order (``award_program_certificates``): ``ALL`` returns early
    (``programs_without_certificates_all``); then programs already awarded are dropped
    (``already_awarded``); then those in the list (``program_excluded``). UUIDs compare in
    canonical spelling.
    """
    return _award_skip(
        canonical_uuid(program_uuid),
        awarded=_canonical_set(awarded),
        excluded=_canonical_set(excluded) if not isinstance(excluded, str) else frozenset(),
        disabled=awarding_disabled(excluded),
    )


def _canonical_set(values: Iterable[str]) -> frozenset[str]:
    return frozenset(canonical_uuid(value) for value in values)


def _award_skip(
    program_uuid: str, *, awarded: frozenset[str], excluded: frozenset[str], disabled: bool
) -> Skip | None:
    if disabled:
        return Skip("programs_without_certificates_all", "PROGRAMS_WITHOUT_CERTIFICATES is ALL")
    if program_uuid in awarded:
        return Skip("already_awarded", "Credentials already holds this program credential")
    if program_uuid in excluded:
        return Skip("program_excluded", "the program is in PROGRAMS_WITHOUT_CERTIFICATES")
    return None


def programs_to_award(
    completed: Iterable[str], awarded: Iterable[str], excluded: ProgramExclusion
) -> tuple[str, ...]:
    """Return completed minus awarded minus excluded, sorted (seed: ``award_program_certificates``).

    The completed programs ``award_skip`` lets through. Nothing when ``excluded`` is ``ALL``.
    UUIDs come back in canonical spelling, so the answer does not depend on which spelling of
    a program was seen first.
    """
    if awarding_disabled(excluded):
        return ()
    held, skip = _canonical_set(awarded), _canonical_set(excluded)
    return tuple(
        sorted(
            uuid_
            for uuid_ in _canonical_set(completed)
            if _award_skip(uuid_, awarded=held, excluded=skip, disabled=False) is None
        )
    )


def revoke_skip(program: Program, course_run: str, awarded: Iterable[str]) -> Skip | None:
    """Why a revoked run's certificate does not revoke the program, or None to revoke it.

    Seed: ``revoke_program_certificates`` (programs containing the run ∩ awarded programs):
    ``run_not_in_program``, ``program_not_awarded``. Completion through another run of the
    same course is not re-checked: that is the seed's behaviour, kept on purpose.
    """
    return _revoke_skip(program, course_run, _canonical_set(awarded))


def _revoke_skip(program: Program, course_run: str, awarded: frozenset[str]) -> Skip | None:
    if course_run not in program.run_keys():
        return Skip("run_not_in_program", f"the program does not contain {course_run}")
    if canonical_uuid(program.uuid) not in awarded:
        return Skip("program_not_awarded", "Credentials holds no awarded credential of the program")
    return None


def programs_to_revoke(
    programs: Iterable[Program], course_run: str, awarded: Iterable[str]
) -> tuple[str, ...]:
    """Return the awarded programs that contain the run, sorted, in canonical spelling.

    The programs ``revoke_skip`` lets through.
    """
    held = _canonical_set(awarded)
    return tuple(
        sorted(
            {canonical_uuid(p.uuid) for p in programs if _revoke_skip(p, course_run, held) is None}
        )
    )
