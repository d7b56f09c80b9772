"""Put any schema text into the real Apicurio registry, as a careless or hostile producer could."""

from __future__ import annotations

import json
import urllib.request
import uuid


def register_raw_schema(registry_url: str, text: str) -> int:
    """Store ``text`` as an Avro schema; return the id the Confluent-compatible API serves.

    Apicurio's Confluent-compatible API refuses a text it cannot read as a schema, but its own
    API stores what it is given when the artifact type is named and no validity rule is set
    (the default), and the compatible API then serves it by content id: exactly what the
    worker gets from a registry that holds a bad schema.
    """
    base = registry_url.split("/apis/", 1)[0]
    body = {
        "artifactId": f"hostile-{uuid.uuid4().hex}",
        "artifactType": "AVRO",
        "firstVersion": {"content": {"content": text, "contentType": "application/json"}},
    }
    request = urllib.request.Request(
        f"{base}/apis/registry/v3/groups/default/artifacts",
        data=json.dumps(body).encode(),
        headers={"Content-Type": "application/json"},
        method="POST",
    )
    with urllib.request.urlopen(request, timeout=30) as response:
        return int(json.load(response)["version"]["contentId"])
