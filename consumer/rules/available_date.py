"""The certificate available date (CAD) of a course run, and its certificate type.

Seed: ``update_certificate_available_date_on_course_update`` and
``update_credentials_course_certificate_configuration_available_date``.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass
from datetime import datetime
from typing import Final

from consumer.events import Pacing
from consumer.rules.modes import CREDENTIALS_CERTIFICATE_TYPES, is_certificate_mode
from consumer.rules.skip import Skip

END: Final = "end"
END_WITH_DATE: Final = "end_with_date"
EARLY_NO_INFO: Final = "early_no_info"


@dataclass(frozen=True, slots=True)
class AvailableDate:
    """The certificate available date to send, and how it was decided.

    ``behavior`` is the display behaviour applied (None for self-paced runs, where it does
    not matter). ``fallback`` is a snake_case reason when the behaviour was *assumed* to be
    ``end`` (missing, unknown, or ``end_with_date`` without a date), so the caller can log
    and count it; None when the data was used as given.
    """

    value: datetime | None
    behavior: str | None
    fallback: str | None = None

    @property
    def reason(self) -> str:
        """Why this date, snake_case: ``self_paced`` or the behaviour applied."""
        return self.behavior or "self_paced"

    @property
    def detail(self) -> str:
        """Why this date, for people (with the assumption, when one was made)."""
        why = _DATE_DETAIL[self.reason]
        if self.fallback:
            why += f" (behaviour assumed end: {self.fallback.replace('_', ' ')})"
        return why


_DATE_DETAIL: Final = {
    "self_paced": "self-paced: certificates are available at once, no date",
    EARLY_NO_INFO: "display behaviour early_no_info: no date",
    END_WITH_DATE: "display behaviour end_with_date: the course's certificate available date",
    END: "display behaviour end: the course end",
}


def certificate_available_date(
    *,
    pacing: Pacing,
    end: datetime | None,
    display_behavior: str | None,
    available_date: datetime | None,
) -> AvailableDate:
    """Decide the CAD to send to Credentials.

    Seed: ``update_certificate_available_date_on_course_update``.

    Self-paced → None. Instructor-paced: ``end_with_date`` → the course's CAD; ``end`` → the
    course end; ``early_no_info`` → None. A missing or unknown behaviour is taken as ``end``
    (the platform default; the seed would crash on it). ``end_with_date`` without a date is
    also taken as ``end``: Studio normalises it that way, while the seed would send the
    string ``"None"``. A None result is sent as JSON null, never as text.
    """
    if pacing == "self":
        return AvailableDate(None, None)
    if display_behavior == EARLY_NO_INFO:
        return AvailableDate(None, EARLY_NO_INFO)
    if display_behavior == END_WITH_DATE and available_date is not None:
        return AvailableDate(available_date, END_WITH_DATE)
    if display_behavior == END:
        return AvailableDate(end, END)
    return AvailableDate(end, END, fallback=_behavior_fallback(display_behavior))


def _behavior_fallback(display_behavior: str | None) -> str:
    if display_behavior is None:
        return "display_behavior_missing"
    if display_behavior == END_WITH_DATE:
        return "end_with_date_without_date"
    return "display_behavior_unknown"


def certificate_type(modes: Iterable[str], *, honor_certificates_enabled: bool) -> str | Skip:
    """Choose the ``certificate_type`` of a run's Credentials config from its LMS course modes.

    Seed (``update_credentials_course_certificate_configuration_available_date``): keep the
    modes that are certificate-relevant or eligible (all but audit; honor only while honor
    certificates are enabled — the seed asks without a status); exactly one must remain,
    else skip. Two departures, both deliberate:

    - Slugs are de-duplicated first: the LMS lists a mode once per currency, and a verified
      seat priced in two currencies is still one certificate type (the seed would skip).
    - A type Credentials does not accept (credit, executive-education, paid-bootcamp, ...)
      is a skip, not a request: Credentials answers 400 for it every time, so a request
      would only dead-letter an event that no retry or redrive can fix.
    """
    kept = sorted(
        {
            mode
            for mode in modes
            if is_certificate_mode(mode, honor_certificates_enabled=honor_certificates_enabled)
        }
    )
    if not kept:
        return Skip("no_certificate_mode", "the course run has no certificate-earning mode")
    if len(kept) > 1:
        return Skip(
            "multiple_certificate_modes",
            f"the course run has several certificate modes: {', '.join(kept)}",
        )
    if kept[0] not in CREDENTIALS_CERTIFICATE_TYPES:
        return Skip(
            "certificate_type_not_accepted",
            f"Credentials does not accept certificate type {kept[0]}",
        )
    return kept[0]
