"""Wire records of the streaming path: validation of incoming flows, typed output records.

The scoring agent consumes ``flows`` as raw bytes and validates each message itself with
:func:`parse_flow_message`, so that a bad record becomes exactly one dead-letter record with a
reason code instead of an exception inside Faust's deserialiser. Reason codes (see
:data:`REASONS`) are stable: operators alert on them.

Two message shapes are accepted on ``flows`` (both keyed by the UTF-8 source host):

* schema 1, one flow per record (the contract's canonical shape)::

    {"schema": 1, "flow_id": "...", "src_ip": "...", "src_port": 1, "dst_ip": "...",
     "dst_port": 80, "protocol": 6, "timestamp": 1499450193.8, "produced_at": ...,
     "label": "BENIGN" | null, "features": {"flow_duration": 1.0, ...}}

* schema 2, a host-keyed micro-batch (several flows of one host, in order, in one record)::

    {"schema": 2, "src_ip": "...", "flows": [<schema-1 flow without "schema">, ...]}

* schema 3, a host-keyed micro-batch by columns (what ``replay --host-batch`` sends: no key
  names per flow, and the worker validates the numbers with numpy instead of per value)::

    {"schema": 3, "src_ip": "...", "feature_names": [<every FEATURE_NAMES name, any order>],
     "flow_id": [...], "timestamp": [...], "features": [[<numbers in feature_names order>], ...],
     "produced_at": [...], "src_port": [...], "dst_ip": [...], "dst_port": [...],
     "protocol": [...], "label": [...]}

  ``flow_id``, ``timestamp`` and ``features`` are required, the other columns optional (absent
  or null: null for every flow); each column holds one entry per flow. Flow *i* of a schema-3
  message means exactly the schema-1 flow made of entry *i* of every column (and of
  ``features`` zipped with ``feature_names``), with the same rules and reason codes: a bad
  entry rejects that flow only (its dead letter carries that flow as a schema-1 object).

  Instead of ``features`` a schema-3 message may carry ``features_f64``: the same matrix as
  base64 (RFC 4648, padded) of its float64 values, little-endian, row after row (flows x
  ``feature_names``). It means the message whose ``features`` holds those numbers, NaN and
  infinities written as below; a block that is not such a matrix rejects the message as a
  whole (``wrong_type``). Parsing the numbers of the JSON rows was most of a worker's
  validation time (docs/performance.md section 11); ``replay --host-batch`` sends this form.

Non-finite numbers: JSON has no NaN/Infinity. In the four rate features (CICFlowMeter divides
by a zero duration there) ``null`` and ``"NaN"`` mean NaN and ``"Infinity"``/``"-Infinity"``
mean infinities; everywhere else they are rejected (reason ``non_finite``).

The typed :class:`faust.Record` classes below document the output topics. The hot path writes
the same fields as plain dicts through orjson (constructing a Record per flow costs more than
scoring it); ``Verdict(**orjson.loads(value))`` reads them back.
"""

from __future__ import annotations

import base64
import math
import time
from dataclasses import dataclass, fields
from operator import itemgetter
from typing import Any

import faust
import numpy as np
import orjson
import pybase64

from stream_ids.errors import InvalidRecordError
from stream_ids.schema import FEATURE_NAMES, RATE_FEATURES

SCHEMA_FLOW = 1
SCHEMA_BATCH = 2
SCHEMA_COLUMNS = 3
SCHEMAS = (SCHEMA_FLOW, SCHEMA_BATCH, SCHEMA_COLUMNS)
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

# Reason codes written to the dead-letter topic.
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
}

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
_NON_FINITE_STRINGS = {"NaN": math.nan, "Infinity": math.inf, "-Infinity": -math.inf}
_MIN_TIMESTAMP, _MAX_TIMESTAMP = 0.0, 4102444800.0  # 1970 .. 2100


@dataclass(slots=True)
class FlowIn:
    """One validated flow: identifiers and ``values``, the model features in FEATURE_NAMES order."""

    flow_id: str
    src_ip: str
    src_port: int | None
    dst_ip: str | None
    dst_port: int | None
    protocol: int | None
    timestamp: float
    produced_at: float | None
    label: str | None
    values: tuple[float, ...]

    @property
    def features(self) -> dict[str, float]:
        return dict(zip(FEATURE_NAMES, self.values, strict=True))

    def to_wire(self) -> dict[str, Any]:
        """The schema-1 ``flows`` value of this flow."""
        return {
            "schema": SCHEMA_FLOW,
            "flow_id": self.flow_id,
            "src_ip": self.src_ip,
            "src_port": self.src_port,
            "dst_ip": self.dst_ip,
            "dst_port": self.dst_port,
            "protocol": self.protocol,
            "timestamp": self.timestamp,
            "produced_at": self.produced_at,
            "label": self.label,
            "features": {name: encode_number(value) for name, value in self.features.items()},
        }


def encode_number(value: float) -> float | str | None:
    """A feature value as JSON can carry it (see the module docstring for non-finite values)."""
    if math.isfinite(value):
        return value
    if math.isnan(value):
        return None
    return "Infinity" if value > 0 else "-Infinity"


def _int_field(obj: dict[str, Any], name: str, low: int, high: int, required: bool) -> int | None:
    value = obj.get(name)
    if value is None:
        if required:
            raise InvalidRecordError("missing_field", name)
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


def _str_field(obj: dict[str, Any], name: str, required: bool) -> str | None:
    value = obj.get(name)
    if value is None:
        if required:
            raise InvalidRecordError("missing_field", name)
        return None
    if not isinstance(value, str):
        raise InvalidRecordError("wrong_type", f"{name} must be a string, got {value!r:.40}")
    if required and not value:
        raise InvalidRecordError("missing_field", f"{name} is empty")
    return value


def _time_field(obj: dict[str, Any], name: str, required: bool) -> float | None:
    value = obj.get(name)
    if value is None:
        if required:
            raise InvalidRecordError("missing_field", name)
        return None
    if isinstance(value, bool) or not isinstance(value, int | float):
        raise InvalidRecordError("wrong_type", f"{name} must be a number, got {value!r:.40}")
    value = float(value)
    if not math.isfinite(value):
        raise InvalidRecordError("non_finite", name)
    if not _MIN_TIMESTAMP <= value <= _MAX_TIMESTAMP:
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
        if name in _RATE_SET:
            if value is None:
                features[name] = math.nan
                continue
            if isinstance(value, str) and value in _NON_FINITE_STRINGS:
                features[name] = _NON_FINITE_STRINGS[value]
                continue
        if value is None:
            raise InvalidRecordError("non_finite", f"features.{name} is null")
        if isinstance(value, bool) or not isinstance(value, int | float):
            if isinstance(value, str) and value in _NON_FINITE_STRINGS:
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
    src_ip = _str_field(obj, "src_ip", required=True) or ""
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
        dst_ip=_str_field(obj, "dst_ip", required=False),
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


def _loads(value: bytes | None) -> Any:
    if not value:
        raise InvalidRecordError("empty")
    try:
        return orjson.loads(value)
    except orjson.JSONDecodeError as error:
        raise InvalidRecordError("invalid_json", str(error)[:200]) from None


def parse_flow_message(value: bytes | None, key: bytes | None) -> FlowIn:
    """Validate one schema-1 ``flows`` message; raises :class:`InvalidRecordError`."""
    obj = _loads(value)
    if not isinstance(obj, dict):
        raise InvalidRecordError("not_an_object", f"got {type(obj).__name__}")
    schema = obj.get("schema")
    if schema != SCHEMA_FLOW or isinstance(schema, bool):
        raise InvalidRecordError("unsupported_schema", f"schema={schema!r:.40}")
    return flow_from_object(obj, decode_key(key))


@dataclass
class FlowColumns:
    """Validated flows column by column: the scoring agent's shape (no object per flow).

    ``values`` holds the model features in FEATURE_NAMES order; ``element`` is each flow's
    index in its message (0 for schema 1), which makes its source position.
    """

    flow_id: list[str]
    src_ip: list[str]
    src_port: list[int | None]
    dst_ip: list[str | None]
    dst_port: list[int | None]
    protocol: list[int | None]
    timestamp: list[float]
    produced_at: list[float | None]
    label: list[str | None]
    values: np.ndarray
    element: list[int]

    def __len__(self) -> int:
        return len(self.flow_id)

    @classmethod
    def empty(cls) -> FlowColumns:
        return cls.of_flows([], [])

    @classmethod
    def of_flows(cls, flows: list[FlowIn], elements: list[int]) -> FlowColumns:
        return cls(
            flow_id=[flow.flow_id for flow in flows],
            src_ip=[flow.src_ip for flow in flows],
            src_port=[flow.src_port for flow in flows],
            dst_ip=[flow.dst_ip for flow in flows],
            dst_port=[flow.dst_port for flow in flows],
            protocol=[flow.protocol for flow in flows],
            timestamp=[flow.timestamp for flow in flows],
            produced_at=[flow.produced_at for flow in flows],
            label=[flow.label for flow in flows],
            values=np.array([flow.values for flow in flows], dtype=np.float64).reshape(
                len(flows), len(FEATURE_NAMES)
            ),
            element=list(elements),
        )

    def flows(self) -> list[FlowIn]:
        """The same flows as :class:`FlowIn` records (tests, tools)."""
        rows = self.values.tolist()
        return [
            FlowIn(
                self.flow_id[i],
                self.src_ip[i],
                self.src_port[i],
                self.dst_ip[i],
                self.dst_port[i],
                self.protocol[i],
                self.timestamp[i],
                self.produced_at[i],
                self.label[i],
                tuple(rows[i]),
            )
            for i in range(len(self))
        ]

    @staticmethod
    def list_fields() -> list[str]:
        """Every field but ``values``: the per-flow lists."""
        return [field.name for field in fields(FlowColumns) if field.name != "values"]

    def extend(self, other: FlowColumns) -> None:
        """Append ``other``'s flows (``values`` is concatenated by :meth:`concat`)."""
        for name in self.list_fields():
            getattr(self, name).extend(getattr(other, name))

    @classmethod
    def concat(cls, parts: list[FlowColumns]) -> FlowColumns:
        out = cls.empty()
        for part in parts:
            out.extend(part)
        if parts:
            out.values = np.concatenate([part.values for part in parts])
        return out

    def select(self, keep: np.ndarray) -> FlowColumns:
        """The flows where the boolean ``keep`` is true."""
        mask = keep.tolist()
        lists = {
            name: [item for item, ok in zip(getattr(self, name), mask, strict=True) if ok]
            for name in self.list_fields()
        }
        return FlowColumns(values=self.values[keep], **lists)


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
        obj = _loads(value)
        if not isinstance(obj, dict):
            raise InvalidRecordError("not_an_object", f"got {type(obj).__name__}")
        schema = obj.get("schema")
        if isinstance(schema, bool) or schema not in SCHEMAS:
            raise InvalidRecordError("unsupported_schema", f"schema={schema!r:.40}")
        host = decode_key(key)
        if schema == SCHEMA_FLOW:
            flow = flow_from_object(obj, host, check)
            return FlowColumns.of_flows([flow], [0]), []
        batch_host = _str_field(obj, "src_ip", required=True) or ""
        if host is not None and host != batch_host:
            raise InvalidRecordError("key_mismatch", f"key {host!r:.60} != src_ip")
        if schema == SCHEMA_BATCH:
            elements = obj.get("flows")
            if not isinstance(elements, list):
                raise InvalidRecordError("wrong_type", "flows must be a list")
        else:
            columns = _columns_of(obj, batch_host, value or b"", check)
            if columns is not None:
                return columns, []
            elements = _rows_of(obj, batch_host)
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
    if not (finite and (stamps >= _MIN_TIMESTAMP).all() and (stamps <= _MAX_TIMESTAMP).all()):
        return None
    return list(stamps.tolist())


def _all_of(column: list[Any] | None, nullable: bool) -> bool:
    if column is None:
        return True
    if nullable:
        return all(item is None or type(item) is str for item in column)
    return all(type(item) is str for item in column)


def _columns_of(obj: dict[str, Any], host: str, value: bytes, check: bool) -> FlowColumns | None:
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


def _rows_of(obj: dict[str, Any], host: str) -> list[dict[str, Any]]:
    """Each flow of a schema-3 message as its schema-1 object (without ``schema``)."""
    count = len(obj["flow_id"])
    names = obj["feature_names"]
    columns = {name: _column(obj, name, count) for name in COLUMNS}
    if obj.get(BINARY_FEATURES) is not None:  # the JSON rows that block stands for
        matrix = binary_features(obj, count).tolist()
        feature_rows = [[encode_number(value) for value in row] for row in matrix]
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
        return raw_bytes(_rows_of(obj, obj["src_ip"])[element])
    return value or b""


def raw_bytes(raw: Any) -> bytes:
    """The bytes of a ``raw`` returned by :func:`parse_message`."""
    if raw is None:
        return b""
    return raw if isinstance(raw, bytes) else orjson.dumps(raw)


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


# --- typed output records (documentation, consumers, tests) -----------------------------------


class Flow(faust.Record, serializer="json"):
    """A schema-1 ``flows`` value."""

    schema: int
    flow_id: str
    src_ip: str
    timestamp: float
    features: dict[str, Any]
    src_port: int | None = None
    dst_ip: str | None = None
    dst_port: int | None = None
    protocol: int | None = None
    produced_at: float | None = None
    label: str | None = None


class Verdict(faust.Record, serializer="json"):
    """A ``verdicts`` (and ``alerts``) value: one per input flow."""

    flow_id: str
    src_ip: str
    timestamp: float
    scored_at: float
    score: float
    is_attack: bool
    threshold: float
    model_version: str
    window_length: int
    dst_ip: str | None = None
    dst_port: int | None = None
    protocol: int | None = None
    produced_at: float | None = None
    label: str | None = None


class Stats(faust.Record, serializer="json"):
    """A ``stats`` value: rolling statistics of one worker."""

    worker: str
    window: str
    window_start: float
    window_end: float
    flows: int
    alerts: int
    emitted_at: float
    tp: int | None = None
    fp: int | None = None
    tn: int | None = None
    fn: int | None = None
    false_alarm_rate: float | None = None
    precision: float | None = None
    recall: float | None = None
    # alerts / flows of the window, and the threshold in force when the record was emitted:
    # a site calibration's (calibrated, its site and target alert rate) or the model's own
    alert_rate: float | None = None
    threshold: float | None = None
    calibrated: bool = False
    calibration_site: str | None = None
    target_alert_rate: float | None = None
    # bounded host state (#18): hosts this worker keeps, and dropped since it started
    hosts_in_state: int | None = None
    hosts_expired: int = 0
    hosts_evicted: int = 0


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
