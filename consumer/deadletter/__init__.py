"""Dead letters: what could not be applied, kept whole with the reason, until redriven.

- ``records``: the record format (original bytes and headers, context headers);
- ``producer``: writing them, acknowledged by the broker before the offset moves;
- ``topics``: dead-letter topics created durable, and ``check``'s audit of existing ones;
- ``inspect``: ``dlq inspect``, a person's summary of a dead-letter topic (read-only).

``dlq redrive`` is the engine itself, reading a dead-letter topic with failures held.
"""
