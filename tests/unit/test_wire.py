"""Every message of :mod:`stream_ids.wire` read back as written, and the one non-finite rule."""

from __future__ import annotations

import math

import numpy as np
import orjson
import pytest

from stream_ids.errors import InvalidRecordError
from stream_ids.rolling import Counts, RollingStats
from stream_ids.schema import FEATURE_NAMES, RATE_FEATURES
from stream_ids.wire import (
    REASONS,
    FlowColumns,
    FlowIn,
    Stats,
    Verdict,
    dead_letter,
    decode_dead_letter,
    decode_number,
    decode_record,
    encode_columns,
    encode_dead_letter,
    encode_features,
    encode_flow,
    encode_number,
    encode_record,
    encode_row,
    parse_columns,
    parse_flow_message,
    verdict_object,
)

RATE = RATE_FEATURES[0]
NOT_RATE = next(name for name in FEATURE_NAMES if name not in RATE_FEATURES)


def _flow(index: int = 0, **values: float) -> FlowIn:
    row = dict.fromkeys(FEATURE_NAMES, 1.0)
    row.update(values)
    return FlowIn(
        flow_id=f"f{index}", src_ip="10.0.0.1", src_port=1000 + index, dst_ip="10.0.0.9",
        dst_port=443, protocol=6, timestamp=1.7e9 + index, produced_at=1.7e9 + index + 0.5,
        label=None if index % 2 else "BENIGN", values=tuple(row[name] for name in FEATURE_NAMES),
    )


def _same(left: float, right: float) -> bool:
    return (math.isnan(left) and math.isnan(right)) or left == right


# --- the one non-finite rule ------------------------------------------------------------------


@pytest.mark.parametrize(
    ("value", "spelled"),
    [(1.5, 1.5), (-2.0, -2.0), (math.nan, None), (math.inf, "Infinity"),
     (-math.inf, "-Infinity")],
)
def test_a_number_is_spelled_one_way_and_read_back(value: float, spelled: object) -> None:
    assert encode_number(value) == spelled
    assert _same(decode_number(orjson.loads(orjson.dumps(spelled))), value)


def test_nan_is_also_read_as_the_string_nan() -> None:
    assert math.isnan(decode_number("NaN"))


def test_rows_and_feature_objects_use_the_same_rule() -> None:
    row = [1.0, math.nan, math.inf, -math.inf]
    assert encode_row(row) == [1.0, None, "Infinity", "-Infinity"]
    assert encode_row([1.0, 2.0], finite=True) == [1.0, 2.0]
    values = [1.0] * len(FEATURE_NAMES)
    values[FEATURE_NAMES.index(RATE)] = math.inf
    assert encode_features(values)[RATE] == "Infinity"


@pytest.mark.parametrize("value", [math.nan, math.inf, -math.inf])
def test_non_finite_rates_travel_and_other_features_are_refused(value: float) -> None:
    flow = _flow(**{RATE: value})
    key, message = encode_flow(flow.to_wire())
    read = parse_flow_message(message, key)
    assert _same(read.features[RATE], value)
    bad = _flow(**{NOT_RATE: value}).to_wire()
    with pytest.raises(InvalidRecordError) as caught:
        parse_flow_message(orjson.dumps(bad), key)
    assert caught.value.reason == "non_finite"


# --- flows: schema 1 and schema 3 ---------------------------------------------------------------


def test_schema_1_round_trip() -> None:
    flow = _flow(3, **{RATE: math.nan})
    key, message = encode_flow(flow.to_wire())
    assert key == b"10.0.0.1"
    read = parse_flow_message(message, key)
    assert read.flow_id == flow.flow_id and read.label == flow.label
    assert all(_same(a, b) for a, b in zip(read.values, flow.values, strict=True))


@pytest.mark.parametrize("binary", [False, True])
def test_schema_3_round_trip(binary: bool) -> None:
    flows = [_flow(index, **{RATE: [1.0, math.nan, math.inf][index % 3]}) for index in range(5)]
    expected = FlowColumns.of_flows(flows, list(range(len(flows))))
    lists = {name: getattr(expected, name) for name in FlowColumns.list_fields()}
    del lists["src_ip"], lists["element"]  # one host per message; elements are positions
    value = encode_columns(src_ip="10.0.0.1", features=expected.values, binary=binary, **lists)
    columns, rejected = parse_columns(value, b"10.0.0.1")
    assert rejected == []
    for name in FlowColumns.list_fields():
        assert getattr(columns, name) == getattr(expected, name), name
    np.testing.assert_array_equal(columns.values, expected.values)


# --- outputs --------------------------------------------------------------------------------------


def test_verdict_round_trip() -> None:
    flows = FlowColumns.of_flows([_flow(0), _flow(1)], [0, 1])
    record = verdict_object(flows, 1, score=0.75, is_attack=True, window_length=2,
                            scored_at=1.8e9, threshold=0.5, model_version="m1")
    verdict = Verdict(**decode_record(encode_record(record)))
    assert verdict.flow_id == "f1" and verdict.is_attack and verdict.window_length == 2
    assert verdict.label is None and verdict.dst_port == 443


def test_stats_round_trip() -> None:
    stats = RollingStats("w1", started_at=1000.0)
    stats.add(Counts(flows=3, alerts=1), at=1005.0)
    for record in stats.snapshot(now=1009.0):
        read = Stats(**decode_record(encode_record(record)))
        assert read.worker == "w1" and read.window == record["window"]


@pytest.mark.parametrize("value", [None, b"", b"not json", b"[1, 2]"])
def test_a_value_that_is_no_record_decodes_to_none(value: bytes | None) -> None:
    assert decode_record(value) is None


def test_dead_letter_round_trip() -> None:
    record = dead_letter(InvalidRecordError("unparsable_row", "x.csv: bad"), b"a,b\x00", b"k",
                         "x.csv", None, None)
    read = decode_dead_letter(encode_dead_letter(record))
    assert read.reason in REASONS
    assert read.raw_bytes() == b"a,b\x00" and read.key_bytes() == b"k"
    assert read.topic == "x.csv" and read.offset is None
