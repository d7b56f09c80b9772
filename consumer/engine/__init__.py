"""The engine: Kafka in, outcomes and offsets out, with the delivery guarantees (ADR 0002).

Split by what each part owns (ADR 0012); each module's docstring says what it keeps:

- ``loop``: the ``Engine`` (intake, rebalancing, drain, shutdown), and its guarantees;
- ``partitions``: generations, pauses, registry blocks, replay bounds, what to commit;
- ``commits``: sending those commits, and undoing refused ones;
- ``workers``: lanes of ordering keys, the pool, completions, the rate limiter's queue;
- ``failures``: dead-letter acknowledgements and resends, the sinks;
- ``accounting``: log lines, metrics and the tally of outcomes;
- ``lanes`` and ``offsets``: the key lanes and the per-partition watermark.

The names the CLI wires are exported here.
"""

from consumer.engine.accounting import Tally
from consumer.engine.failures import FailureSink, HeldFailures, LoggedFailures
from consumer.engine.loop import Engine
from consumer.engine.partitions import Bounds
from consumer.engine.workers import Limiter, Processor

__all__ = [
    "Bounds",
    "Engine",
    "FailureSink",
    "HeldFailures",
    "Limiter",
    "LoggedFailures",
    "Processor",
    "Tally",
]
