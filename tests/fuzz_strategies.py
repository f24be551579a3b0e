"""Hypothesis strategies of ``flows`` message values (unit and integration fuzz tests)."""

from __future__ import annotations

import math
from typing import Any

import numpy as np
import orjson
import pybase64
from hypothesis import strategies as st

from stream_ids.schema import FEATURE_NAMES
from stream_ids.wire import BINARY_FEATURES, COLUMNS, binary_block


def flow(flow_id: str = "f1", src_ip: str = "10.0.0.1") -> dict[str, Any]:
    features: dict[str, Any] = {name: 0.0 for name in FEATURE_NAMES}
    features["flow_duration"] = 1000.0
    features["total_fwd_packets"] = 2.0
    return {"schema": 1, "flow_id": flow_id, "src_ip": src_ip, "src_port": 5555,
            "dst_ip": "10.0.0.9", "dst_port": 80, "protocol": 6, "timestamp": 1_499_450_000.0,
            "produced_at": 1_499_450_000.0, "label": "BENIGN", "features": features}


KEY = b"10.0.0.1"
FIELDS = ["schema", "flow_id", "src_ip", "src_port", "dst_ip", "dst_port", "protocol",
          "timestamp", "produced_at", "label", "features"]

json_scalars = (
    st.none()
    | st.booleans()
    | st.integers(min_value=-(2**63), max_value=2**64 - 1)
    | st.floats(allow_nan=False, allow_infinity=False)
    | st.sampled_from(["NaN", "Infinity", "-Infinity", "", "10.0.0.1", "1e999"])
    | st.text(max_size=20)
)
json_values = st.recursive(
    json_scalars,
    lambda inner: st.lists(inner, max_size=4) | st.dictionaries(st.text(max_size=8), inner,
                                                                max_size=4),
    max_leaves=12,
)


@st.composite
def mutated_flow(draw: Any) -> dict[str, Any]:
    """A good schema-1 flow with 0-3 fields or features replaced by random JSON or removed."""
    obj = flow(flow_id=f"f{draw(st.integers(0, 10**6))}", src_ip=KEY.decode())
    for _ in range(draw(st.integers(0, 3))):
        if draw(st.booleans()):
            name = draw(st.sampled_from(FIELDS))
            target = obj
        else:
            name = draw(st.sampled_from(FEATURE_NAMES))
            target = obj["features"] if isinstance(obj.get("features"), dict) else obj
        if draw(st.integers(0, 4)) == 0:
            target.pop(name, None)
        else:
            target[name] = draw(json_values)
    return obj


def to_columns(flows: list[Any], names: list[str] | None = None) -> dict[str, Any]:
    """The schema-3 message of schema-1 flow objects (a flow that is not an object: nulls)."""
    names = list(FEATURE_NAMES) if names is None else names
    objects = [flow if isinstance(flow, dict) else {} for flow in flows]
    message: dict[str, Any] = {"schema": 3, "src_ip": KEY.decode(), "feature_names": names}
    for column in COLUMNS:
        message[column] = [obj.get(column) for obj in objects]
    message["features"] = [
        [obj["features"].get(name) for name in names]
        if isinstance(obj.get("features"), dict)
        else obj.get("features")
        for obj in objects
    ]
    return message


_AS_NUMBER = {None: math.nan, "NaN": math.nan, "Infinity": math.inf, "-Infinity": -math.inf}


def to_binary(message: dict[str, Any]) -> dict[str, Any] | None:
    """``message`` (schema 3) with its features as a ``features_f64`` block: null/"NaN"/
    "Infinity" as NaN/inf, numbers as float64 (None when an entry is none of them, or when a
    number does not survive float64 unchanged, e.g. an integer beyond 2**53)."""
    rows = message.get("features")
    names = message.get("feature_names")
    if not isinstance(rows, list) or not isinstance(names, list):
        return None
    matrix: list[list[float]] = []
    for row in rows:
        if not isinstance(row, list) or len(row) != len(names):
            return None
        values = []
        for entry in row:
            if isinstance(entry, bool):
                return None
            if isinstance(entry, float):
                values.append(entry)
            elif isinstance(entry, int):
                if float(entry) != entry:
                    return None
                values.append(float(entry))
            elif isinstance(entry, str | None) and entry in _AS_NUMBER:
                values.append(_AS_NUMBER[entry])
            else:
                return None
        matrix.append(values)
    binary = {name: value for name, value in message.items() if name != "features"}
    binary[BINARY_FEATURES] = binary_block(np.array(matrix, dtype=np.float64).reshape(
        len(rows), len(names)))
    return binary


@st.composite
def message_values(draw: Any) -> bytes:
    kind = draw(st.sampled_from(["bytes", "json", "flow", "batch", "columns", "binary"]))
    if kind == "bytes":
        return draw(st.binary(max_size=200))
    if kind == "json":
        return orjson.dumps(draw(json_values))
    if kind == "flow":
        return orjson.dumps(draw(mutated_flow()), option=orjson.OPT_NON_STR_KEYS)
    if kind == "columns":
        columns = to_columns(draw(st.lists(mutated_flow(), max_size=5)))
        if draw(st.integers(0, 3)) == 0:
            name = draw(st.sampled_from([*COLUMNS, "features", "feature_names", "src_ip"]))
            columns[name] = draw(json_values)
        return orjson.dumps(columns, option=orjson.OPT_NON_STR_KEYS)
    if kind == "binary":
        columns = to_columns(draw(st.lists(mutated_flow(), max_size=5)))
        binary = to_binary(columns) or columns
        if draw(st.integers(0, 3)) == 0:
            name = draw(st.sampled_from([*COLUMNS, "features", BINARY_FEATURES, "src_ip"]))
            binary[name] = draw(json_values | st.text(alphabet="AQ=", max_size=12))
        return orjson.dumps(binary, option=orjson.OPT_NON_STR_KEYS)
    elements = draw(st.lists(mutated_flow() | json_values, max_size=5))
    for element in elements:
        if isinstance(element, dict):
            element.pop("schema", None)
    batch: dict[str, Any] = {"schema": 2, "src_ip": KEY.decode(), "flows": elements}
    if draw(st.integers(0, 5)) == 0:
        batch[draw(st.sampled_from(["schema", "src_ip", "flows"]))] = draw(json_values)
    return orjson.dumps(batch, option=orjson.OPT_NON_STR_KEYS)


def carried(value: bytes, key: bytes | None, agent: bool = True) -> int:
    """How many flows the message carries: a well-formed schema-2 batch its elements (at least
    one outcome even when empty), a well-formed schema-3 batch its ``flow_id`` entries,
    anything else one. The agent rejects a keyless message as a whole; ``parse_message`` alone
    accepts a missing key."""
    try:
        obj = orjson.loads(value)
    except orjson.JSONDecodeError:
        return 1
    if (
        isinstance(obj, dict)
        and obj.get("schema") == 3
        and not isinstance(obj.get("schema"), bool)
        and isinstance(obj.get("src_ip"), str)
        and obj["src_ip"]
        and (key == obj["src_ip"].encode() or (key is None and not agent))
        and isinstance(obj.get("flow_id"), list)
        and obj["flow_id"]
        and isinstance(obj.get("feature_names"), list)
        and all(isinstance(name, str) for name in obj["feature_names"])
        and set(FEATURE_NAMES) <= set(obj["feature_names"])
        and all(
            obj.get(name) is None
            or (isinstance(obj[name], list) and len(obj[name]) == len(obj["flow_id"]))
            for name in [*COLUMNS, "features"]
        )
        and obj.get("timestamp") is not None
        and features_readable(obj)
    ):
        return len(obj["flow_id"])
    if (
        isinstance(obj, dict)
        and obj.get("schema") == 2
        and not isinstance(obj.get("schema"), bool)
        and isinstance(obj.get("flows"), list)
        and isinstance(obj.get("src_ip"), str)
        and obj["src_ip"]
        and (key == obj["src_ip"].encode() or (key is None and not agent))
    ):
        return max(1, len(obj["flows"]))
    return 1


def features_readable(obj: dict[str, Any]) -> bool:
    """A schema-3 message's features can be split into flows: JSON rows, or a base64 block of
    exactly flows x feature_names float64 (and not both)."""
    block = obj.get(BINARY_FEATURES)
    if block is None:
        return obj.get("features") is not None
    if obj.get("features") is not None or not isinstance(block, str):
        return False
    try:
        raw = pybase64.b64decode(block, validate=True)
    except ValueError:
        return False
    return len(raw) == 8 * len(obj["flow_id"]) * len(obj["feature_names"])
