"""Former home of the wire records: every name now lives in :mod:`stream_ids.wire`.

Kept only for the modules that still import it (the scoring agent, bench scripts,
``model.generalization``); new code imports :mod:`stream_ids.wire`. Delete once nothing
imports ``stream_ids.records``.
"""

from __future__ import annotations

from stream_ids.wire import (
    BINARY_FEATURES,
    FlowColumns,
    check_rows,
    dead_letter,
    element_raw,
    parse_columns,
    parse_message,
    row_error,
)

__all__ = [
    "BINARY_FEATURES", "FlowColumns", "check_rows", "dead_letter", "element_raw",
    "parse_columns", "parse_message", "row_error",
]
