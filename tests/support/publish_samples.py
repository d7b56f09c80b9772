"""Publish the sample events of ``examples/*.jsonl`` the way the LMS and Studio do.

Used by ``make run``. Each line: ``{"event_type", "topic" (before any prefix), "data"}``,
``data`` being the event's Avro-shaped record. Topics get ``EVENT_BUS_TOPIC_PREFIX``.
"""

from __future__ import annotations

import json
import os
import sys
from pathlib import Path

from tests.support.lms import LmsProducer


def main(folder: str) -> int:
    """Publish every sample; print one line per event."""
    prefix = os.environ.get("EVENT_BUS_TOPIC_PREFIX", "")
    producer = LmsProducer()
    count = 0
    for path in sorted(Path(folder).glob("*.jsonl")):
        for line in path.read_text().splitlines():
            if not line.strip():
                continue
            sample = json.loads(line)
            topic = f"{prefix}-{sample['topic']}" if prefix else sample["topic"]
            event_id = producer.send(sample["event_type"], sample["data"], topic)
            print(f"published {sample['event_type']} to {topic} ({event_id})")
            count += 1
    producer.close()
    print(f"{count} sample events published")
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1] if len(sys.argv) > 1 else "examples"))
