"""Commands become service calls: the only place fetched data meets ``rules``.

``Effects.apply(command, request_id)`` reads what the decision needs, asks ``rules``, writes
the result to Credentials and returns an ``EffectResult`` saying what was done or skipped
and why (LMS user id and keys only: no username, e-mail or name). Every write is an upsert,
so applying a command again — a retry, a replay — is harmless. Failures are the service
errors, raised (the engine retries ``TransientError`` and dead-letters the rest).

One module per command family: ``apply`` (``Effects``, and the course-certificate sync),
``programs`` (awards and revocations, with ``completion``: where completion reads the
learner's certificates) and ``available_date`` (the CAD); ``results`` holds the values.
"""

from __future__ import annotations

from consumer.effects.apply import Effects
from consumer.effects.results import EffectResult, EffectStatus, ProgramAction, ProgramResult

__all__ = ["EffectResult", "EffectStatus", "Effects", "ProgramAction", "ProgramResult"]
