"""The ``flows-dlq`` message and its reason codes.

Every flow that cannot be scored ends as exactly one dead-letter record carrying a reason code
from :data:`REASONS`. The codes are stable: operators alert on them, so a new one is added here
(and to docs/streaming.md), never invented at the call site.
"""

from __future__ import annotations

import base64
import time
from typing import Any

import faust
import orjson

from stream_ids.errors import InvalidRecordError

REASONS: dict[str, str] = {
    "empty": "the message value is empty",
    "invalid_json": "the value is not valid JSON (or not UTF-8)",
    "not_an_object": "the JSON value is not an object",
    "unsupported_schema": "the schema field is missing or not a supported version",
    "missing_field": "a required identifier or feature is missing",
    "wrong_type": "a field has the wrong type (e.g. a string where a number belongs)",
    "non_finite": "NaN or Infinity where only finite numbers are allowed",
    "negative_value": "a negative count, length or flag counter",
    "out_of_range": "a number outside the plausible range (port, protocol, magnitude, time)",
    "key_mismatch": "the message key is not the flow's source host",
    # written by the relay, before a message exists: the CSV line itself is the raw
    "unparsable_row": "a CICFlowMeter CSV row the relay could not read (its raw is the line)",
}


def dead_letter(
    error: InvalidRecordError,
    raw: bytes | None,
    key: bytes | None,
    topic: str,
    partition: int | None,
    offset: int | None,
) -> dict[str, Any]:
    """The ``flows-dlq`` value for one rejected record."""
    return {
        "reason": error.reason,
        "detail": error.detail,
        "raw": base64.b64encode(raw or b"").decode("ascii"),
        "key": None if key is None else base64.b64encode(key).decode("ascii"),
        "topic": topic,
        "partition": partition,
        "offset": offset,
        "failed_at": time.time(),
    }


def encode_dead_letter(record: dict[str, Any]) -> bytes:
    """The bytes of a :func:`dead_letter` record on the ``flows-dlq`` topic."""
    return orjson.dumps(record)


def decode_dead_letter(value: bytes) -> DeadLetter:
    """A ``flows-dlq`` value read back; ``raw_bytes()`` / ``key_bytes()`` undo the base64."""
    return DeadLetter(**orjson.loads(value))


class DeadLetter(faust.Record, serializer="json"):
    """A ``flows-dlq`` value."""

    reason: str
    detail: str
    raw: str
    key: str | None
    topic: str
    partition: int | None
    offset: int | None
    failed_at: float

    def raw_bytes(self) -> bytes:
        return base64.b64decode(self.raw)

    def key_bytes(self) -> bytes | None:
        return None if self.key is None else base64.b64decode(self.key)
