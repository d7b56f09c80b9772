"""Plain values for Kafka positions, shared by the engine, the lag monitor and the admin side.

A partition is named by ``TP`` (topic, partition) wherever it is a dict key or a set member:
a frozen value, unlike ``confluent_kafka.TopicPartition``, which also carries a mutable
offset, metadata and error. This module imports nothing, so anything may import it.
"""

from __future__ import annotations

TP = tuple[str, int]
"""A partition: (topic, partition number)."""
