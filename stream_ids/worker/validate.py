"""Step 1 of a batch: raw ``flows`` events -> the good flows plus their dead letters.

Pure: nothing is sent here (:mod:`stream_ids.worker.publish` sends the dead letters). Each flow
is validated once: the message decoders check types (:func:`stream_ids.wire.parse_columns`
without the range rules), then the range rules run once over the whole batch's feature matrix
(:func:`stream_ids.wire.row_errors`), which names the rule each bad row breaks.
"""

from __future__ import annotations

from typing import Any, NamedTuple

import numpy as np

from stream_ids.errors import InvalidRecordError
from stream_ids.tables import source_positions
from stream_ids.wire import FlowColumns, dead_letter, element_raw, parse_columns, row_errors

# A dead letter ready to send: (the message key, the flows-dlq record).
DeadLetterOut = tuple[bytes | None, dict[str, Any]]


class ValidFlows(NamedTuple):
    """The good flows of some events, with where each came from."""

    flows: FlowColumns
    keys: list[bytes]  # each flow's host key (the message key)
    positions: np.ndarray  # (n,) int64 source positions (tables.source_position), -1 unknown
    partitions: np.ndarray  # (n,) int64 ``flows`` partitions, -1 unknown
    times: np.ndarray  # (n,) float64 flow times (the flows' timestamps)


def validate_events(events: list[Any]) -> tuple[ValidFlows, list[DeadLetterOut]]:
    """The good flows of ``events`` (Faust events: ``event.message``) and one dead letter per
    bad flow; every flow of every message ends in exactly one of the two."""
    parts: list[FlowColumns] = []
    keys: list[bytes] = []
    positions: list[np.ndarray] = []
    partitions: list[int] = []
    origins: list[Any] = []  # the message of each good flow (for a range-rule rejection)
    rejected: list[DeadLetterOut] = []

    def reject(message: Any, error: InvalidRecordError, raw: bytes | None) -> None:
        record = dead_letter(
            error, raw, message.key, message.topic, message.partition, message.offset
        )
        rejected.append((message.key, record))

    for event in events:
        message = event.message
        key = message.key
        if key is None:
            no_key = InvalidRecordError("key_mismatch", "the message has no key")
            reject(message, no_key, message.value)
            continue
        columns, bad = parse_columns(message.value, key, check=False)
        for _element, error, raw in bad:
            reject(message, error, raw)
        count = len(columns)
        if not count:
            continue
        parts.append(columns)
        keys.extend([key] * count)
        offset = message.offset if message.offset is not None else -1
        positions.append(
            source_positions(offset, columns.element)
            if offset >= 0
            else np.full(count, -1, dtype=np.int64)
        )
        partition = message.partition if message.partition is not None else -1
        partitions.extend([partition] * count)
        origins.extend([message] * count)
    flows = FlowColumns.concat(parts)
    where = np.concatenate(positions) if positions else np.zeros(0, dtype=np.int64)
    errors = row_errors(flows.values) if len(flows) else {}
    if errors:
        for index, error in errors.items():
            message = origins[index]
            reject(message, error, element_raw(message.value, flows.element[index]))
        good = np.ones(len(flows), dtype=bool)
        good[list(errors)] = False
        flows = flows.select(good)
        keep = good.tolist()
        keys = [key for key, ok in zip(keys, keep, strict=True) if ok]
        partitions = [p for p, ok in zip(partitions, keep, strict=True) if ok]
        where = where[good]
    valid = ValidFlows(
        flows,
        keys,
        where,
        np.asarray(partitions, np.int64),
        np.asarray(flows.timestamp, dtype=np.float64),
    )
    return valid, rejected
