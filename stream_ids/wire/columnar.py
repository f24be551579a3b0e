"""The ``flows`` message, schema 3: a host-keyed micro-batch by columns.

What ``replay --host-batch`` sends: no key names per flow, and the worker validates the numbers
with numpy instead of per value::

    {"schema": 3, "src_ip": "...", "feature_names": [<every FEATURE_NAMES name, any order>],
     "flow_id": [...], "timestamp": [...], "features": [[<numbers in feature_names order>], ...],
     "produced_at": [...], "src_port": [...], "dst_ip": [...], "dst_port": [...],
     "protocol": [...], "label": [...]}

``flow_id``, ``timestamp`` and ``features`` are required, the other columns optional (absent or
null: null for every flow); each column holds one entry per flow. Flow *i* means exactly the
schema-1 flow made of entry *i* of every column (and of ``features`` zipped with
``feature_names``), with the same rules and reason codes: a bad entry rejects that flow only
(its dead letter carries that flow as a schema-1 object).

Instead of ``features`` a message may carry ``features_f64``: the same matrix as base64
(RFC 4648, padded) of its float64 values, little-endian, row after row (flows x
``feature_names``). It means the message whose ``features`` holds those numbers, NaN and
infinities spelled as :mod:`stream_ids.wire.numbers` says; a block that is not such a matrix
rejects the message as a whole (``wrong_type``). Parsing the numbers of the JSON rows was most
of a worker's validation time (docs/performance.md section 11).

:func:`encode_columns` writes the message (the producers' side); :func:`columns_of` and
:func:`rows_of` read it (:func:`stream_ids.wire.batches.parse_columns` dispatches).
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import numpy as np
import orjson
import pybase64

from stream_ids.errors import InvalidRecordError
from stream_ids.schema import FEATURE_NAMES
from stream_ids.wire.columns import FlowColumns
from stream_ids.wire.flows import SCHEMA_COLUMNS
from stream_ids.wire.numbers import encode_row
from stream_ids.wire.validate import MAX_TIMESTAMP, MIN_TIMESTAMP, check_rows

# schema-3 columns besides ``features`` (schema-1 field names)
COLUMNS = (
    "flow_id",
    "timestamp",
    "produced_at",
    "src_port",
    "dst_ip",
    "dst_port",
    "protocol",
    "label",
)
REQUIRED_COLUMNS = ("flow_id", "timestamp", "features")
# schema 3: the features matrix as base64 of little-endian float64 (instead of ``features``)
BINARY_FEATURES = "features_f64"
_NUMERIC_COLUMNS = ("timestamp", "produced_at", "src_port", "dst_port", "protocol")
_FEATURE_NAME_LIST = list(FEATURE_NAMES)


_FEATURE_ORDER: dict[tuple[str, ...], list[int]] = {}


def _feature_order(names: Any) -> list[int]:
    """Column indices of FEATURE_NAMES in a schema-3 ``feature_names`` (cached per list)."""
    if not isinstance(names, list) or not all(isinstance(name, str) for name in names):
        raise InvalidRecordError("wrong_type", "feature_names must be a list of strings")
    key = tuple(names)
    order = _FEATURE_ORDER.get(key)
    if order is None:
        where = {name: index for index, name in enumerate(names)}
        missing = [name for name in FEATURE_NAMES if name not in where]
        if missing:
            raise InvalidRecordError("missing_field", f"features.{missing[0]}")
        order = [where[name] for name in FEATURE_NAMES]
        if len(_FEATURE_ORDER) < 64:
            _FEATURE_ORDER[key] = order
    return order


def _column(obj: dict[str, Any], name: str, count: int) -> list[Any] | None:
    """A schema-3 column (None: absent or null); a column of the wrong length is refused."""
    column = obj.get(name)
    if column is None:
        if name in REQUIRED_COLUMNS:
            raise InvalidRecordError("missing_field", name)
        return None
    if not isinstance(column, list):
        raise InvalidRecordError("wrong_type", f"{name} must be a list")
    if len(column) != count:
        raise InvalidRecordError(
            "wrong_type", f"{name} has {len(column)} entries for {count} flows"
        )
    return column


def _numbers(column: list[Any], kinds: str) -> np.ndarray | None:
    """The column as an array if every entry is a JSON number of ``kinds`` (else None)."""
    try:
        array = np.array(column)
    except (ValueError, OverflowError):
        return None
    return array if array.ndim == 1 and array.dtype.kind in kinds else None


def _valid_times(column: list[Any] | None) -> list[float] | None:
    """Epoch seconds as floats if every entry passes the time rules (else None)."""
    stamps = None if column is None else _numbers(column, "if")
    if stamps is None:
        return None
    stamps = stamps.astype(np.float64)
    finite = np.isfinite(stamps).all()
    if not (finite and (stamps >= MIN_TIMESTAMP).all() and (stamps <= MAX_TIMESTAMP).all()):
        return None
    return list(stamps.tolist())


def _all_of(column: list[Any] | None, nullable: bool) -> bool:
    if column is None:
        return True
    if nullable:
        return all(item is None or type(item) is str for item in column)
    return all(type(item) is str for item in column)


def columns_of(obj: dict[str, Any], host: str, value: bytes, check: bool) -> FlowColumns | None:
    """A schema-3 message validated whole with numpy; None when some entry needs the per-flow
    rules (then every flow is validated as its schema-1 object, same outcome, slower).

    Raises for what makes the message as a whole unreadable (missing or ragged columns).
    """
    flow_ids = obj.get("flow_id")
    if flow_ids is None:
        raise InvalidRecordError("missing_field", "flow_id")
    if not isinstance(flow_ids, list):
        raise InvalidRecordError("wrong_type", "flow_id must be a list")
    if not flow_ids:
        raise InvalidRecordError("missing_field", "flows is empty")
    count = len(flow_ids)
    order = _feature_order(obj.get("feature_names"))
    block = obj.get(BINARY_FEATURES)
    if block is not None:
        matrix = binary_features(obj, count)
    else:
        features = _column(obj, "features", count)
    columns = {name: _column(obj, name, count) for name in COLUMNS[1:]}
    if not (
        _all_of(flow_ids, nullable=False)
        and _all_of(columns["label"], nullable=True)
        and _all_of(columns["dst_ip"], nullable=True)
    ):
        return None
    # numpy would take a JSON boolean for 1/0; the per-flow rules refuse it
    if block is None:
        if b"true" in value or b"false" in value:
            return None
        try:
            matrix = np.array(features)
        except (ValueError, OverflowError):  # ragged rows
            return None
        if matrix.ndim != 2 or matrix.dtype.kind not in "if" or matrix.shape[0] != count:
            return None
        if matrix.shape[1] != len(obj["feature_names"]):
            return None
    elif any(type(item) is bool for name in _NUMERIC_COLUMNS for item in columns[name] or ()):
        return None
    timestamps = _valid_times(columns["timestamp"])
    produced: list[float] | list[None] | None = (
        [None] * count if columns["produced_at"] is None else _valid_times(columns["produced_at"])
    )
    if timestamps is None or produced is None:
        return None
    ints: dict[str, list[int | None]] = {}
    for name, high in (("src_port", 65535), ("dst_port", 65535), ("protocol", 255)):
        column = columns[name]
        if column is None:
            ints[name] = [None] * count
            continue
        numbers = _numbers(column, "i")
        if numbers is None or not ((numbers >= 0) & (numbers <= high)).all():
            return None
        ints[name] = numbers.tolist()
    values = np.ascontiguousarray(matrix[:, order], dtype=np.float64)
    if check and check_rows(values).any():
        return None
    return FlowColumns(
        flow_id=flow_ids,
        src_ip=[host] * count,
        src_port=ints["src_port"],
        dst_ip=columns["dst_ip"] or [None] * count,
        dst_port=ints["dst_port"],
        protocol=ints["protocol"],
        timestamp=timestamps,
        produced_at=list(produced),
        label=columns["label"] or [None] * count,
        values=values,
        element=list(range(count)),
    )


def binary_features(obj: dict[str, Any], count: int) -> np.ndarray:
    """The (flows, feature_names) float64 matrix of a schema-3 ``features_f64`` block."""
    if obj.get("features") is not None:
        raise InvalidRecordError("wrong_type", "features and features_f64 are both given")
    block = obj.get(BINARY_FEATURES)
    if not isinstance(block, str):
        raise InvalidRecordError("wrong_type", "features_f64 must be a base64 string")
    try:
        raw = pybase64.b64decode(block, validate=True)
    except ValueError:  # binascii.Error is one
        raise InvalidRecordError("wrong_type", "features_f64 is not base64") from None
    width = len(obj["feature_names"])
    if len(raw) != count * width * 8:
        raise InvalidRecordError(
            "wrong_type",
            f"features_f64 holds {len(raw)} bytes, not {count} flows x {width} float64",
        )
    return np.frombuffer(raw, dtype="<f8").reshape(count, width)


def binary_block(matrix: np.ndarray) -> str:
    """The ``features_f64`` value of a (flows, features) matrix (the producers' side)."""
    data = np.ascontiguousarray(matrix, dtype="<f8").tobytes()
    return pybase64.b64encode(data).decode("ascii")


def encode_columns(
    *,
    src_ip: str,
    flow_id: Sequence[str],
    timestamp: Sequence[float],
    produced_at: Sequence[float | None],
    src_port: Sequence[int | None],
    dst_ip: Sequence[str | None],
    dst_port: Sequence[int | None],
    protocol: Sequence[int | None],
    label: Sequence[str | None],
    features: np.ndarray,
    binary: bool = False,
) -> bytes:
    """One schema-3 ``flows`` value: ``features`` is the (flows, FEATURE_NAMES) float64 matrix.

    ``binary``: the features as one ``features_f64`` block instead of JSON rows of numbers; the
    same flows, parsed at a fraction of the cost.
    """
    block: dict[str, Any]
    if binary:
        block = {BINARY_FEATURES: binary_block(features)}
    else:
        finite = np.isfinite(features).all(axis=1).tolist()
        block = {"features": [encode_row(row, ok) for row, ok in
                              zip(features.tolist(), finite, strict=True)]}
    return orjson.dumps(
        {
            "schema": SCHEMA_COLUMNS,
            "src_ip": src_ip,
            "feature_names": _FEATURE_NAME_LIST,
            "flow_id": list(flow_id),
            "timestamp": list(timestamp),
            "produced_at": list(produced_at),
            "src_port": list(src_port),
            "dst_ip": list(dst_ip),
            "dst_port": list(dst_port),
            "protocol": list(protocol),
            "label": list(label),
            **block,
        }
    )


def rows_of(obj: dict[str, Any], host: str) -> list[dict[str, Any]]:
    """Each flow of a schema-3 message as its schema-1 object (without ``schema``)."""
    count = len(obj["flow_id"])
    names = obj["feature_names"]
    columns = {name: _column(obj, name, count) for name in COLUMNS}
    if obj.get(BINARY_FEATURES) is not None:  # the JSON rows that block stands for
        matrix = binary_features(obj, count).tolist()
        feature_rows = [encode_row(row) for row in matrix]
    else:
        feature_rows = obj["features"]
    rows: list[dict[str, Any]] = []
    for index, features in enumerate(feature_rows):
        row: dict[str, Any] = {"src_ip": host}
        for name, column in columns.items():
            row[name] = None if column is None else column[index]
        row["features"] = (
            dict(zip(names, features, strict=True))
            if isinstance(features, list) and len(features) == len(names)
            else features
        )
        rows.append(row)
    return rows

