"""Every message stream-ids reads or writes, one encoder and one decoder each.

- ``flows`` schema 1: written by :func:`.flows.flow_object` (+ ``encode_flow``), read by
  :func:`.validate.parse_flow_message`;
- ``flows`` schemas 1-3: read by :func:`.batches.parse_columns` (schema 2 is written by
  clients, schema 3 by :func:`.columnar.encode_columns`);
- ``verdicts`` and ``alerts``: :func:`.outputs.verdict_object` + ``encode_record``, read by
  :func:`.outputs.decode_record`;
- ``stats``: :meth:`stream_ids.rolling.Counts.record` + ``encode_record``, read by
  :func:`.outputs.decode_record`;
- ``flows-dlq``: :func:`.dead_letters.dead_letter` + ``encode_dead_letter``, read by
  :func:`.dead_letters.decode_dead_letter`.

Non-finite numbers are spelled one way (:mod:`.numbers`); dead-letter reason codes live in one
table (:data:`.dead_letters.REASONS`). Producers, the relay, offline scoring and the tests import
from this package only, never from its modules' private names.
"""

from __future__ import annotations

from stream_ids.wire.batches import (
    Rejected,
    element_raw,
    parse_columns,
    parse_message,
    raw_bytes,
)
from stream_ids.wire.columnar import (
    BINARY_FEATURES,
    COLUMNS,
    REQUIRED_COLUMNS,
    binary_block,
    binary_features,
    encode_columns,
)
from stream_ids.wire.columns import FlowColumns
from stream_ids.wire.dead_letters import (
    REASONS,
    DeadLetter,
    dead_letter,
    decode_dead_letter,
    encode_dead_letter,
)
from stream_ids.wire.flows import (
    HOSTLESS,
    SCHEMA_BATCH,
    SCHEMA_COLUMNS,
    SCHEMA_FLOW,
    SCHEMAS,
    Flow,
    FlowIn,
    encode_flow,
    flow_object,
)
from stream_ids.wire.numbers import (
    NON_FINITE_STRINGS,
    decode_number,
    encode_features,
    encode_number,
    encode_row,
)
from stream_ids.wire.outputs import (
    Stats,
    Verdict,
    decode_record,
    encode_record,
    verdict_object,
)
from stream_ids.wire.validate import (
    MAX_ABS_VALUE,
    NONNEGATIVE_FEATURES,
    check_rows,
    decode_key,
    flow_from_object,
    parse_flow_message,
    row_error,
    row_errors,
)

__all__ = [
    "BINARY_FEATURES", "COLUMNS", "HOSTLESS", "MAX_ABS_VALUE", "NONNEGATIVE_FEATURES",
    "NON_FINITE_STRINGS", "REASONS", "REQUIRED_COLUMNS", "SCHEMAS", "SCHEMA_BATCH",
    "SCHEMA_COLUMNS", "SCHEMA_FLOW", "DeadLetter", "Flow", "FlowColumns", "FlowIn", "Rejected",
    "Stats", "Verdict", "binary_block", "binary_features", "check_rows", "dead_letter",
    "decode_dead_letter", "decode_key", "decode_number", "decode_record", "element_raw",
    "encode_columns", "encode_dead_letter", "encode_features", "encode_flow", "encode_number",
    "encode_record", "encode_row", "flow_from_object", "flow_object", "parse_columns",
    "parse_flow_message", "parse_message", "raw_bytes", "row_error", "row_errors", "verdict_object",
]
