"""Run a piece of code in a forked child with a time limit, so a hang or a crash fails a test.

A decoder that spins in compiled code holds the GIL and never runs a signal handler, so
neither a watchdog thread nor ``signal.alarm`` can stop it in-process; a segfault would take
the whole test run down. A child process can be killed, and its death is only a report.
"""

from __future__ import annotations

import os
import pickle
import select
import signal
import warnings
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any


@dataclass(frozen=True)
class Outcome:
    """What the child's call did: returned ``value``, or raised ``error_class`` with ``reason``."""

    value: Any = None
    error_class: str | None = None
    error_types: tuple[str, ...] = ()  # the class and its bases, innermost first
    reason: str | None = None
    message: str = ""

    @property
    def raised(self) -> bool:
        """Whether the call raised."""
        return self.error_class is not None

    def raised_a(self, error: type[BaseException]) -> bool:
        """Whether the call raised ``error`` or a subclass of it."""
        return error.__name__ in self.error_types


def _outcome_of(function: Callable[[], Any]) -> Outcome:
    try:
        return Outcome(value=function())
    except BaseException as error:  # noqa: BLE001 - every ending is reported to the parent
        return Outcome(
            error_class=type(error).__name__,
            error_types=tuple(kind.__name__ for kind in type(error).__mro__),
            reason=getattr(error, "reason", None),
            message=str(error)[:500],
        )


def run_bounded(function: Callable[[], Any], *, seconds: float) -> Outcome:
    """Call ``function`` in a forked child; fail if it runs over ``seconds`` or dies.

    ``function`` must return something picklable; exceptions come back described.
    Raises ``AssertionError`` for a child that is still running (it is killed) or that died
    without answering (a segfault, say).
    """
    read_end, write_end = os.pipe()
    with warnings.catch_warnings():
        # The child only decodes and exits; the threads of the parent do not matter to it.
        warnings.simplefilter("ignore", DeprecationWarning)
        pid = os.fork()
    if pid == 0:  # the child: never return into the test runner
        try:
            os.close(read_end)
            os.write(write_end, pickle.dumps(_outcome_of(function)))
        finally:
            os._exit(0)
    os.close(write_end)
    try:
        ready, _, _ = select.select([read_end], [], [], seconds)
        if not ready:
            os.kill(pid, signal.SIGKILL)
            os.waitpid(pid, 0)
            raise AssertionError(f"did not finish within {seconds} s (killed)")
        chunks = []
        while chunk := os.read(read_end, 1 << 16):
            chunks.append(chunk)
    finally:
        os.close(read_end)
    _, status = os.waitpid(pid, 0)
    if not chunks:
        raise AssertionError(f"died without an answer: {_describe(status)}")
    outcome = pickle.loads(b"".join(chunks))
    assert isinstance(outcome, Outcome)
    return outcome


def _describe(status: int) -> str:
    if os.WIFSIGNALED(status):
        return f"killed by {signal.Signals(os.WTERMSIG(status)).name}"
    return f"exit status {os.waitstatus_to_exitcode(status)}"
