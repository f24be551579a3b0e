"""Validation of one flow object, schema 1's decoder, and the feature range rules.

A bad flow raises :class:`~stream_ids.errors.InvalidRecordError` with a reason code of
:data:`stream_ids.wire.dead_letters.REASONS`. Non-finite numbers (spelled as
:mod:`stream_ids.wire.numbers` says) are allowed in the four rate features only, where
CICFlowMeter divides by a zero duration; everywhere else they are rejected (``non_finite``).

The range rules (finite, magnitude, sign) are also batched: :func:`check_rows` flags the rows of
a feature matrix that break one, :func:`row_error` names the rule (the worker and offline
scoring dead-letter the same flows); :func:`row_errors` does both in one pass (the worker).
"""

from __future__ import annotations

import math
from operator import itemgetter
from typing import Any

import numpy as np
import orjson

from stream_ids.errors import InvalidRecordError
from stream_ids.schema import FEATURE_NAMES, RATE_FEATURES
from stream_ids.wire.flows import SCHEMA_FLOW, FlowIn
from stream_ids.wire.numbers import NON_FINITE_STRINGS, decode_number

# Counts, byte lengths and flag counters can never be negative. (Header lengths, IATs and the
# initial window sizes can: CICFlowMeter writes -1 for "absent" and overflows some of them.)
NONNEGATIVE_FEATURES: frozenset[str] = frozenset(
    name
    for name in FEATURE_NAMES
    if any(part in name for part in ("packets", "length", "flag", "bytes", "segment_size"))
    and not name.startswith(("init_win", "fwd_header", "bwd_header"))
    and name not in RATE_FEATURES
)
MAX_ABS_VALUE = 1e15  # far above anything CICFlowMeter writes (rates of 1-µs flows reach ~1e9)
_RATE_SET = frozenset(RATE_FEATURES)
MIN_TIMESTAMP, MAX_TIMESTAMP = 0.0, 4102444800.0  # 1970 .. 2100


def _present(obj: dict[str, Any], name: str, required: bool) -> Any:
    """``obj[name]``, None when absent or null; a required field must be there."""
    value = obj.get(name)
    if value is None and required:
        raise InvalidRecordError("missing_field", name)
    return value


def _int_field(obj: dict[str, Any], name: str, low: int, high: int, required: bool) -> int | None:
    value = _present(obj, name, required)
    if value is None:
        return None
    if isinstance(value, bool) or not isinstance(value, int | float):
        raise InvalidRecordError("wrong_type", f"{name} must be an integer, got {value!r:.40}")
    if isinstance(value, float):
        if not math.isfinite(value):
            raise InvalidRecordError("non_finite", name)
        if not value.is_integer():
            raise InvalidRecordError("wrong_type", f"{name} must be an integer, got {value!r}")
        value = int(value)
    if not low <= value <= high:
        raise InvalidRecordError("out_of_range", f"{name}={value} not in [{low}, {high}]")
    return value


def str_field(obj: dict[str, Any], name: str, required: bool) -> str | None:
    value = _present(obj, name, required)
    if value is None:
        return None
    if not isinstance(value, str):
        raise InvalidRecordError("wrong_type", f"{name} must be a string, got {value!r:.40}")
    if required and not value:
        raise InvalidRecordError("missing_field", f"{name} is empty")
    return value


def _time_field(obj: dict[str, Any], name: str, required: bool) -> float | None:
    value = _present(obj, name, required)
    if value is None:
        return None
    if isinstance(value, bool) or not isinstance(value, int | float):
        raise InvalidRecordError("wrong_type", f"{name} must be a number, got {value!r:.40}")
    value = float(value)
    if not math.isfinite(value):
        raise InvalidRecordError("non_finite", name)
    if not MIN_TIMESTAMP <= value <= MAX_TIMESTAMP:
        raise InvalidRecordError("out_of_range", f"{name}={value} is not epoch seconds")
    return value


def _features(raw: Any) -> dict[str, float]:
    if raw is None:
        raise InvalidRecordError("missing_field", "features")
    if not isinstance(raw, dict):
        raise InvalidRecordError("wrong_type", "features must be an object")
    features: dict[str, float] = {}
    for name in FEATURE_NAMES:
        if name not in raw:
            raise InvalidRecordError("missing_field", f"features.{name}")
        value = raw[name]
        if name in _RATE_SET and (
            value is None or (isinstance(value, str) and value in NON_FINITE_STRINGS)
        ):
            features[name] = decode_number(value)  # NaN or an infinity, spelled for JSON
            continue
        if value is None:
            raise InvalidRecordError("non_finite", f"features.{name} is null")
        if isinstance(value, bool) or not isinstance(value, int | float):
            if isinstance(value, str) and value in NON_FINITE_STRINGS:
                raise InvalidRecordError("non_finite", f"features.{name}={value}")
            raise InvalidRecordError(
                "wrong_type", f"features.{name} must be a number, got {value!r:.40}"
            )
        number = float(value)
        if not math.isfinite(number):
            if name in _RATE_SET:
                features[name] = number
                continue
            raise InvalidRecordError("non_finite", f"features.{name}={number}")
        if abs(number) > MAX_ABS_VALUE:
            raise InvalidRecordError("out_of_range", f"features.{name}={number:.3g}")
        if number < 0 and name in NONNEGATIVE_FEATURES:
            raise InvalidRecordError("negative_value", f"features.{name}={number:g}")
        features[name] = number
    return features


_GET_FEATURES = itemgetter(*FEATURE_NAMES)
_FINITE_COLUMNS = np.array([name not in _RATE_SET for name in FEATURE_NAMES])
_NONNEGATIVE_COLUMNS = np.array([name in NONNEGATIVE_FEATURES for name in FEATURE_NAMES])


def _feature_values(raw: Any) -> tuple[float, ...]:
    """The features in FEATURE_NAMES order; plain JSON numbers take the fast path.

    Type errors are raised here; range checks (finite, magnitude, sign) are :func:`check_rows`'s.
    """
    if isinstance(raw, dict):
        try:
            row = _GET_FEATURES(raw)
        except KeyError:
            pass
        else:
            for value in row:
                kind = type(value)
                if kind is not float and kind is not int:
                    break
            else:
                return row
    return tuple(_features(raw).values())


def check_rows(matrix: np.ndarray) -> np.ndarray:
    """Rows of an (n, F) feature matrix that break a range rule (non-finite, huge, negative)."""
    finite = np.isfinite(matrix)
    bad = ~finite[:, _FINITE_COLUMNS].all(axis=1)
    bad |= (np.abs(np.where(finite, matrix, 0.0)) > MAX_ABS_VALUE).any(axis=1)
    bad |= (matrix[:, _NONNEGATIVE_COLUMNS] < 0).any(axis=1)
    return bad


def row_errors(matrix: np.ndarray) -> dict[int, InvalidRecordError]:
    """The rows of an (n, F) feature matrix that break a range rule, in row order, each with
    the first rule it breaks (the error :func:`row_error` names): one pass over the matrix."""
    finite = np.isfinite(matrix)
    non_finite = ~finite & _FINITE_COLUMNS
    huge = finite & (np.abs(np.where(finite, matrix, 0.0)) > MAX_ABS_VALUE)
    negative = (matrix < 0) & _NONNEGATIVE_COLUMNS & ~huge
    broken = non_finite | huge | negative
    errors: dict[int, InvalidRecordError] = {}
    for row in np.flatnonzero(broken.any(axis=1)).tolist():
        column = int(np.argmax(broken[row]))  # FEATURE_NAMES order, as _features checks
        name, number = FEATURE_NAMES[column], float(matrix[row, column])
        if non_finite[row, column]:
            errors[row] = InvalidRecordError("non_finite", f"features.{name}={number}")
        elif huge[row, column]:
            errors[row] = InvalidRecordError("out_of_range", f"features.{name}={number:.3g}")
        else:
            errors[row] = InvalidRecordError("negative_value", f"features.{name}={number:g}")
    return errors


def row_error(values: tuple[float, ...]) -> InvalidRecordError:
    """The precise error of a row that :func:`check_rows` flagged."""
    try:
        _features(dict(zip(FEATURE_NAMES, values, strict=True)))
    except InvalidRecordError as error:
        return error
    return InvalidRecordError("out_of_range", "features")  # pragma: no cover - flagged rows fail


def flow_from_object(obj: Any, key: str | None, check: bool = True) -> FlowIn:
    """Validate one decoded flow object (schema 1, or an element of a schema-2 batch).

    With ``check=False`` the feature range rules are left to :func:`check_rows` (batched).
    """
    if not isinstance(obj, dict):
        raise InvalidRecordError("not_an_object", f"got {type(obj).__name__}")
    flow_id = obj.get("flow_id")
    if flow_id is None:
        raise InvalidRecordError("missing_field", "flow_id")
    if isinstance(flow_id, bool) or not isinstance(flow_id, str | int):
        raise InvalidRecordError("wrong_type", "flow_id must be a string")
    src_ip = str_field(obj, "src_ip", required=True) or ""
    if key is not None and key != src_ip:
        raise InvalidRecordError("key_mismatch", f"key {key!r:.60} != src_ip {src_ip!r:.60}")
    label = obj.get("label")
    if label is not None and not isinstance(label, str):
        raise InvalidRecordError("wrong_type", "label must be a string or null")
    timestamp = _time_field(obj, "timestamp", required=True) or 0.0
    return FlowIn(
        flow_id=str(flow_id),
        src_ip=src_ip,
        src_port=_int_field(obj, "src_port", 0, 65535, required=False),
        dst_ip=str_field(obj, "dst_ip", required=False),
        dst_port=_int_field(obj, "dst_port", 0, 65535, required=False),
        protocol=_int_field(obj, "protocol", 0, 255, required=False),
        timestamp=timestamp,
        produced_at=_time_field(obj, "produced_at", required=False),
        label=label,
        values=_checked(_feature_values(obj.get("features")), check),
    )


def _checked(values: tuple[float, ...], check: bool) -> tuple[float, ...]:
    if check and check_rows(np.asarray([values], dtype=np.float64))[0]:
        raise row_error(values)
    return values


def decode_key(key: bytes | None) -> str | None:
    if key is None:
        return None
    try:
        return key.decode("utf-8")
    except UnicodeDecodeError:
        raise InvalidRecordError("key_mismatch", "the key is not UTF-8") from None


def load_json(value: bytes | None) -> Any:
    if not value:
        raise InvalidRecordError("empty")
    try:
        return orjson.loads(value)
    except orjson.JSONDecodeError as error:
        raise InvalidRecordError("invalid_json", str(error)[:200]) from None


def parse_flow_message(value: bytes | None, key: bytes | None) -> FlowIn:
    """Validate one schema-1 ``flows`` message; raises :class:`InvalidRecordError`."""
    obj = load_json(value)
    if not isinstance(obj, dict):
        raise InvalidRecordError("not_an_object", f"got {type(obj).__name__}")
    schema = obj.get("schema")
    if schema != SCHEMA_FLOW or isinstance(schema, bool):
        raise InvalidRecordError("unsupported_schema", f"schema={schema!r:.40}")
    return flow_from_object(obj, decode_key(key))

