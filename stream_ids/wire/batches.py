"""Any ``flows`` message (schema 1, 2 or 3) into validated columns plus rejected flows.

Schema 2 is a host-keyed micro-batch of schema-1 objects, in order, in one record::

    {"schema": 2, "src_ip": "...", "flows": [<schema-1 flow without "schema">, ...]}

Schema 1 is :mod:`stream_ids.wire.flows`, schema 3 :mod:`stream_ids.wire.columnar`. Every flow a
message carries ends as exactly one validated flow or one rejected element (its dead letter).
"""

from __future__ import annotations

from typing import Any

import orjson

from stream_ids.errors import InvalidRecordError
from stream_ids.wire.columnar import columns_of, rows_of
from stream_ids.wire.columns import FlowColumns
from stream_ids.wire.flows import SCHEMA_BATCH, SCHEMA_COLUMNS, SCHEMA_FLOW, SCHEMAS, FlowIn
from stream_ids.wire.validate import decode_key, flow_from_object, load_json, str_field

Rejected = tuple[int, InvalidRecordError, bytes]  # (element, error, raw for the dead letter)


def parse_columns(
    value: bytes | None, key: bytes | None, check: bool = True
) -> tuple[FlowColumns, list[Rejected]]:
    """Validate a ``flows`` message of any schema into columns plus rejected elements.

    Every flow the message carries ends in exactly one of the two (a message that cannot be
    split counts as one flow, element 0, rejected with the message bytes as ``raw``). With
    ``check=False`` the feature range rules are left to the caller (:func:`check_rows`).
    """
    try:
        obj = load_json(value)
        if not isinstance(obj, dict):
            raise InvalidRecordError("not_an_object", f"got {type(obj).__name__}")
        schema = obj.get("schema")
        if isinstance(schema, bool) or schema not in SCHEMAS:
            raise InvalidRecordError("unsupported_schema", f"schema={schema!r:.40}")
        host = decode_key(key)
        if schema == SCHEMA_FLOW:
            flow = flow_from_object(obj, host, check)
            return FlowColumns.of_flows([flow], [0]), []
        batch_host = str_field(obj, "src_ip", required=True) or ""
        if host is not None and host != batch_host:
            raise InvalidRecordError("key_mismatch", f"key {host!r:.60} != src_ip")
        if schema == SCHEMA_BATCH:
            elements = obj.get("flows")
            if not isinstance(elements, list):
                raise InvalidRecordError("wrong_type", "flows must be a list")
        else:
            columns = columns_of(obj, batch_host, value or b"", check)
            if columns is not None:
                return columns, []
            elements = rows_of(obj, batch_host)
        if not elements:  # an empty batch still ends as one outcome, never silently
            raise InvalidRecordError("missing_field", "flows is empty")
    except InvalidRecordError as error:
        return FlowColumns.empty(), [(0, error, value or b"")]
    good: list[FlowIn] = []
    indices: list[int] = []
    rejected: list[Rejected] = []
    for index, element in enumerate(elements):
        try:
            good.append(flow_from_object(element, batch_host, check))
            indices.append(index)
        except InvalidRecordError as error:
            rejected.append((index, error, orjson.dumps(element)))
    return FlowColumns.of_flows(good, indices), rejected



def parse_message(
    value: bytes | None, key: bytes | None, check: bool = True
) -> list[tuple[FlowIn | None, InvalidRecordError | None, Any]]:
    """Validate a ``flows`` message of any schema, one ``(flow, error, raw)`` per flow.

    The per-flow view of :func:`parse_columns` (same rules), in message order: exactly one of
    ``flow`` and ``error`` is set; ``raw`` is what goes to the dead-letter topic if the flow is
    rejected (the message bytes, or the flow's element of a batch, see :func:`raw_bytes`).
    """
    columns, rejected = parse_columns(value, key, check)
    results: dict[int, tuple[FlowIn | None, InvalidRecordError | None, Any]] = {
        index: (None, error, raw) for index, error, raw in rejected
    }
    for index, flow in zip(columns.element, columns.flows(), strict=True):
        results[index] = (flow, None, value or b"")
    return [results[index] for index in sorted(results)]


def element_raw(value: bytes | None, element: int) -> bytes:
    """The dead-letter ``raw`` of flow ``element`` of a message that parsed (see parse_columns):
    the message itself for schema 1, else that flow's object."""
    obj = orjson.loads(value or b"{}")
    if obj.get("schema") == SCHEMA_BATCH:
        return raw_bytes(obj["flows"][element])
    if obj.get("schema") == SCHEMA_COLUMNS:
        return raw_bytes(rows_of(obj, obj["src_ip"])[element])
    return value or b""


def raw_bytes(raw: Any) -> bytes:
    """The bytes of a ``raw`` returned by :func:`parse_message`."""
    if raw is None:
        return b""
    return raw if isinstance(raw, bytes) else orjson.dumps(raw)

