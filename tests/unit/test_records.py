"""Validation of streamed flow records: each bad kind gets its reason code."""

from __future__ import annotations

import math

import numpy as np
import orjson
import pytest
from fuzz_strategies import KEY, json_values, to_binary, to_columns
from hypothesis import given, settings
from hypothesis import strategies as st
from streaming_fakes import flow

from stream_ids.errors import InvalidRecordError
from stream_ids.schema import FEATURE_NAMES, RATE_FEATURES
from stream_ids.wire import (
    BINARY_FEATURES,
    COLUMNS,
    REASONS,
    Verdict,
    check_rows,
    dead_letter,
    element_raw,
    parse_columns,
    parse_flow_message,
    parse_message,
    row_error,
    row_errors,
)


def _reason(value: bytes | None, key: bytes | None = b"10.0.0.1") -> str:
    with pytest.raises(InvalidRecordError) as caught:
        parse_flow_message(value, key)
    assert caught.value.reason in REASONS
    return caught.value.reason


def _with(**changes: object) -> bytes:
    obj = flow()
    for name, value in changes.items():
        if name.startswith("f_"):
            obj["features"][name[2:]] = value
        else:
            obj[name] = value
    return orjson.dumps(obj)


def test_good_record_parses() -> None:
    parsed = parse_flow_message(orjson.dumps(flow()), b"10.0.0.1")
    assert parsed.src_ip == "10.0.0.1" and parsed.label == "BENIGN"
    assert parsed.features["flow_duration"] == 1000.0


def test_rate_features_accept_non_finite() -> None:
    value = _with(f_flow_bytes_per_s="Infinity", f_flow_packets_per_s=None)
    parsed = parse_flow_message(value, b"10.0.0.1")
    assert parsed.features["flow_bytes_per_s"] == math.inf
    assert math.isnan(parsed.features["flow_packets_per_s"])


@pytest.mark.parametrize(
    ("value", "reason"),
    [
        (b"", "empty"),
        (None, "empty"),
        (b"{not json", "invalid_json"),
        (b"\xff\xfe", "invalid_json"),
        (b"[1, 2]", "not_an_object"),
        (b'{"flow_id": "x"}', "unsupported_schema"),
        (_with(schema=99), "unsupported_schema"),
        (_with(flow_id=None), "missing_field"),
        (_with(timestamp=None), "missing_field"),
        (_with(features=None), "missing_field"),
        (_with(f_flow_duration="12"), "wrong_type"),
        (_with(f_total_fwd_packets="lots"), "wrong_type"),
        (_with(f_total_fwd_packets=[1]), "wrong_type"),
        (_with(f_total_fwd_packets=True), "wrong_type"),
        (_with(dst_port="80"), "wrong_type"),
        (_with(src_ip=17), "wrong_type"),
        (_with(f_flow_duration="NaN"), "non_finite"),
        (_with(f_flow_iat_mean="Infinity"), "non_finite"),
        (_with(f_flow_duration=None), "non_finite"),
        (_with(f_total_fwd_packets=-3), "negative_value"),
        (_with(f_total_length_bwd_packets=-1.0), "negative_value"),
        (_with(f_flow_duration=1e300), "out_of_range"),
        (_with(dst_port=70000), "out_of_range"),
        (_with(protocol=300), "out_of_range"),
        (_with(timestamp=-5.0), "out_of_range"),
        (_with(src_ip="10.9.9.9"), "key_mismatch"),
    ],
)
def test_bad_records_get_their_reason(value: bytes | None, reason: str) -> None:
    assert _reason(value) == reason


def test_missing_feature_is_named() -> None:
    obj = flow()
    del obj["features"]["idle_min"]
    with pytest.raises(InvalidRecordError) as caught:
        parse_flow_message(orjson.dumps(obj), b"10.0.0.1")
    assert caught.value.reason == "missing_field" and "idle_min" in caught.value.detail


def test_nan_token_is_invalid_json() -> None:
    text = orjson.dumps(flow()).replace(b'"flow_duration":1000.0', b'"flow_duration":NaN')
    assert _reason(text) == "invalid_json"


def test_negative_header_length_and_init_window_are_allowed() -> None:
    value = _with(f_fwd_header_length=-20.0, f_init_win_bytes_fwd=-1.0, f_flow_iat_min=-1.0)
    parse_flow_message(value, b"10.0.0.1")


def test_micro_batch_splits_good_and_bad_flows() -> None:
    good, bad = flow("a"), flow("b")
    bad["features"]["total_fwd_packets"] = -1
    del good["schema"], bad["schema"]
    value = orjson.dumps({"schema": 2, "src_ip": "10.0.0.1", "flows": [good, bad]})
    results = parse_message(value, b"10.0.0.1")
    assert [r[0].flow_id if r[0] else r[1].reason for r in results] == ["a", "negative_value"]
    assert orjson.loads(results[1][2])["flow_id"] == "b"


def test_micro_batch_key_must_match() -> None:
    value = orjson.dumps({"schema": 2, "src_ip": "10.0.0.1", "flows": []})
    [(parsed, error, _raw)] = parse_message(value, b"10.0.0.2")
    assert parsed is None and error.reason == "key_mismatch"


def test_dead_letter_record_round_trips_raw_bytes() -> None:
    import base64

    record = dead_letter(InvalidRecordError("empty"), b"\x00raw", b"k", "flows", 3, 42)
    assert base64.b64decode(record["raw"]) == b"\x00raw"
    assert record["reason"] == "empty" and record["partition"] == 3 and record["offset"] == 42


def test_verdict_record_reads_wire_dicts() -> None:
    verdict = Verdict(
        flow_id="x", src_ip="a", timestamp=1.0, scored_at=2.0, score=0.3, is_attack=False,
        threshold=0.5, model_version="m", window_length=1,
    )
    assert Verdict.loads(verdict.dumps()).score == pytest.approx(0.3)


# --- schema 3: a host micro-batch by columns -------------------------------------------------


def _outcomes(results: list) -> list:
    """Comparable per-flow outcomes (NaN features compare equal)."""
    out = []
    for parsed, error, _raw in results:
        if parsed is None:
            out.append(("rejected", error.reason))
        else:
            values = tuple("nan" if math.isnan(v) else v for v in parsed.values)
            out.append((parsed.flow_id, parsed.src_port, parsed.dst_ip, parsed.dst_port,
                        parsed.protocol, parsed.timestamp, parsed.produced_at, parsed.label,
                        values))
    return out


@st.composite
def value_mutated_flows(draw) -> list:
    """Good schema-1 flows (no ``schema``) with 0-3 values replaced by random JSON."""
    flows = []
    for index in range(draw(st.integers(1, 6))):
        obj = flow(f"f{index}")
        del obj["schema"]
        for _ in range(draw(st.integers(0, 3))):
            if draw(st.booleans()):
                obj[draw(st.sampled_from([c for c in COLUMNS]))] = draw(json_values)
            elif draw(st.integers(0, 9)) == 0:
                # not an object (a row cannot say "missing": that is schema 1/2 only)
                obj["features"] = draw(json_values.filter(lambda v: not isinstance(v, dict)))
            elif isinstance(obj["features"], dict):
                obj["features"][draw(st.sampled_from(FEATURE_NAMES))] = draw(json_values)
        flows.append(obj)
    return flows


@settings(max_examples=400, deadline=None)
@given(value_mutated_flows(), st.randoms(use_true_random=False), st.booleans())
def test_columns_message_means_the_same_flows_as_a_schema_2_batch(flows, shuffle, check) -> None:
    names = [*list(FEATURE_NAMES), "extra_ignored"]
    shuffle.shuffle(names)
    for obj in flows:
        if isinstance(obj["features"], dict):
            obj["features"]["extra_ignored"] = 1.0
    batch = orjson.dumps({"schema": 2, "src_ip": KEY.decode(), "flows": flows},
                         option=orjson.OPT_NON_STR_KEYS)
    columns = orjson.dumps(to_columns(flows, names), option=orjson.OPT_NON_STR_KEYS)
    expected = _outcomes(parse_message(batch, KEY, check))
    got = _outcomes(parse_message(columns, KEY, check))
    assert got == expected


_NUMBERS = st.integers(-(2**63), 2**63 - 1) | st.floats(allow_nan=False, allow_infinity=False)
_NUMERIC = ["timestamp", "produced_at", "src_port", "dst_port", "protocol"]


@st.composite
def number_mutated_flows(draw) -> list:
    """Good flows with numbers (any range) in numeric places: the numpy fast path's input."""
    flows = []
    for index in range(draw(st.integers(1, 6))):
        obj = _plain(f"f{index}")
        for _ in range(draw(st.integers(0, 2))):
            if draw(st.booleans()):
                obj[draw(st.sampled_from(_NUMERIC))] = draw(_NUMBERS)
            else:
                obj["features"][draw(st.sampled_from(FEATURE_NAMES))] = draw(_NUMBERS)
        flows.append(obj)
    return flows


@settings(max_examples=400, deadline=None)
@given(number_mutated_flows(), st.booleans())
def test_columns_fast_path_applies_the_per_flow_rules(flows, check) -> None:
    batch = orjson.dumps({"schema": 2, "src_ip": KEY.decode(), "flows": flows})
    columns = orjson.dumps(to_columns(flows))
    assert _outcomes(parse_message(columns, KEY, check)) == _outcomes(
        parse_message(batch, KEY, check)
    )


@pytest.mark.parametrize("value", [True, False])
def test_columns_boolean_feature_is_refused_like_schema_1(value) -> None:
    flows = [_plain("a"), _plain("b")]
    flows[1]["features"]["flow_duration"] = value
    [first, second] = parse_message(orjson.dumps(to_columns(flows)), KEY)
    assert first[0] is not None and second[1].reason == "wrong_type"


_FEATURE_VALUES = (
    st.floats(allow_nan=True, allow_infinity=True)
    | st.sampled_from([0.0, -1.0, 1e15, 1.0000000000000002e15, -0.0, 5e-324])
)


@st.composite
def binary_able_flows(draw) -> list:
    """Flows whose features are any float64 (NaN, infinities, huge, negative) and whose other
    columns may hold random JSON: every entry a binary block can carry."""
    flows = []
    for index in range(draw(st.integers(1, 6))):
        obj = _plain(f"f{index}")
        for _ in range(draw(st.integers(0, 3))):
            obj["features"][draw(st.sampled_from(FEATURE_NAMES))] = draw(_FEATURE_VALUES)
        if draw(st.integers(0, 3)) == 0:
            obj[draw(st.sampled_from(COLUMNS))] = draw(json_values)
        flows.append(obj)
    return flows


def _json_number(value: float) -> object:
    """A float64 as a JSON features row carries it (see the records module docstring)."""
    if math.isnan(value):
        return None
    if math.isinf(value):
        return "Infinity" if value > 0 else "-Infinity"
    return value


def _agent_outcomes(value: bytes) -> list:
    """What the scoring agent makes of a message: parse_columns without the range rules, then
    row_errors over the batch (stream_ids.worker.validate.validate_events)."""
    columns, rejected = parse_columns(value, KEY, check=False)
    outcomes = {index: ("rejected", error.reason) for index, error, _ in rejected}
    errors = row_errors(columns.values) if len(columns) else {}
    for row, (element, parsed) in enumerate(zip(columns.element, columns.flows(), strict=True)):
        if row in errors:
            outcomes[element] = ("rejected", errors[row].reason)
        else:
            [outcomes[element]] = _outcomes([(parsed, None, b"")])
    return [outcomes[index] for index in sorted(outcomes)]


@settings(max_examples=400, deadline=None)
@given(binary_able_flows(), st.randoms(use_true_random=False))
def test_binary_features_mean_the_json_rows(flows, shuffle) -> None:
    """A features_f64 block means the message whose JSON rows hold its numbers: the same
    flows, rejections, reasons and dead-letter objects, whatever the other columns hold (with
    the range rules in the parser, and as the agent applies them afterwards)."""
    names = [*list(FEATURE_NAMES), "extra_ignored"]
    shuffle.shuffle(names)
    for obj in flows:
        obj["features"]["extra_ignored"] = 1.0
    message = to_columns(flows, names)
    binary = to_binary(message)
    assert binary is not None and "features" not in binary
    message["features"] = [[_json_number(value) for value in row] for row in message["features"]]
    as_json = orjson.dumps(message, option=orjson.OPT_NON_STR_KEYS)
    as_binary = orjson.dumps(binary, option=orjson.OPT_NON_STR_KEYS)
    expected = parse_message(as_json, KEY)
    got = parse_message(as_binary, KEY)
    assert _outcomes(got) == _outcomes(expected)
    assert _agent_outcomes(as_binary) == _agent_outcomes(as_json)
    for index, (parsed, _error, _raw) in enumerate(got):
        if parsed is None:  # its dead letter: the same schema-1 object
            assert orjson.loads(element_raw(as_binary, index)) == orjson.loads(
                element_raw(as_json, index)
            )


@pytest.mark.parametrize(
    ("block", "reason"),
    [
        (7, "wrong_type"),
        ("not base64!", "wrong_type"),
        ("AAAA", "wrong_type"),  # 3 bytes for 2 flows of 76+ features
        (None, "missing_field"),  # and no features either
    ],
)
def test_binary_block_that_is_no_matrix_rejects_the_message_as_one(block, reason) -> None:
    message = to_columns([_plain("a"), _plain("b")])
    del message["features"]
    message[BINARY_FEATURES] = block
    [(parsed, error, raw)] = parse_message(orjson.dumps(message), KEY)
    assert parsed is None and error.reason == reason and raw == orjson.dumps(message)


def test_binary_block_and_json_rows_together_are_refused() -> None:
    message = to_binary(to_columns([_plain("a"), _plain("b")]))
    message["features"] = to_columns([_plain("a"), _plain("b")])["features"]
    [(parsed, error, _raw)] = parse_message(orjson.dumps(message), KEY)
    assert parsed is None and error.reason == "wrong_type"


@pytest.mark.parametrize("binary", [False, True], ids=["json-rows", "binary-block"])
def test_columns_fast_path_equals_per_flow_rules_on_real_rows(binary) -> None:
    """Real CICIDS2017 rows through `replay`'s columns message: same flows as schema 1."""
    from producers.replay import columns_message, flow_object, load_replay_frame, prepare
    from stream_ids.datasets import shared_data_dir

    frame = load_replay_frame(
        [shared_data_dir() / "cicids2017-original" / "Friday-Afternoon-DDoS.sample.csv"],
        limit=3000,
    )
    prepared = prepare(frame)
    # CICFlowMeter's zero-duration rates (Infinity, NaN) in some rows: the non-finite row path
    rates = [FEATURE_NAMES.index(name) for name in RATE_FEATURES]
    prepared.features = prepared.features.copy()
    prepared.features[:40, rates[0]] = np.inf
    prepared.features[40:80, rates[-1]] = np.nan
    prepared.finite_rows = np.isfinite(prepared.features).all(axis=1)
    n = prepared.n
    rows = [(index, f"r-{index}", prepared.timestamp[index], 1.8e9) for index in range(n)]
    columns, rejected = parse_columns(columns_message(prepared, "h", rows, binary), b"h")
    singles = [
        parse_flow_message(
            orjson.dumps(dict(flow_object(prepared, index, f"r-{index}", 0.0, 1.8e9), src_ip="h")),
            b"h",
        )
        for index in range(n)
    ]
    assert n > 500 and not rejected and len(columns) == n
    assert _outcomes([(f, None, b"") for f in columns.flows()]) == _outcomes(
        [(f, None, b"") for f in singles]
    )


@pytest.mark.parametrize(
    ("change", "reason"),
    [
        ({"feature_names": None}, "wrong_type"),
        ({"feature_names": ["flow_duration"]}, "missing_field"),
        ({"flow_id": []}, "missing_field"),
        ({"flow_id": "f0"}, "wrong_type"),
        ({"timestamp": None}, "missing_field"),
        ({"label": ["BENIGN"]}, "wrong_type"),  # 1 entry for 2 flows
        ({"src_ip": "10.9.9.9"}, "key_mismatch"),
    ],
)
def test_columns_message_level_errors_reject_it_as_one(change, reason) -> None:
    message = to_columns([_plain("a"), _plain("b")])
    message.update(change)
    [(parsed, error, raw)] = parse_message(orjson.dumps(message), KEY)
    assert parsed is None and error.reason == reason and raw == orjson.dumps(message)


@pytest.mark.parametrize(
    ("column", "entry", "reason"),
    [
        ("dst_port", 70000, "out_of_range"),
        ("protocol", -1, "out_of_range"),
        ("timestamp", 5e9, "out_of_range"),
        ("flow_id", None, "missing_field"),
        ("label", 3, "wrong_type"),
        ("dst_ip", 7, "wrong_type"),
        ("features", [1.0, 2.0], "wrong_type"),  # a short row
    ],
)
def test_columns_bad_entry_rejects_only_its_flow(column, entry, reason) -> None:
    message = to_columns([_plain("a"), _plain("b"), _plain("c")])
    message[column][1] = entry
    value = orjson.dumps(message)
    outcomes = [(p.flow_id if p else e.reason) for p, e, _ in parse_message(value, KEY)]
    assert outcomes == ["a", reason, "c"]
    raw = orjson.loads(element_raw(value, 1))
    assert raw["src_ip"] == KEY.decode() and raw[column] == entry  # the flow, as schema 1


def _plain(flow_id: str) -> dict:
    obj = flow(flow_id, KEY.decode())
    del obj["schema"]
    return obj


@settings(max_examples=300, deadline=None)
@given(
    st.lists(
        st.lists(
            st.sampled_from([0.0, 1.0, -1.0, 2e15, -2e15, math.nan, math.inf, -math.inf]),
            min_size=len(FEATURE_NAMES),
            max_size=len(FEATURE_NAMES),
        ),
        min_size=1,
        max_size=6,
    )
)
def test_row_errors_name_the_rule_row_error_names(rows) -> None:
    """The worker's one-pass range check flags the rows check_rows flags, each with the error
    the per-row check names (reason and detail)."""
    matrix = np.asarray(rows, dtype=np.float64)
    errors = row_errors(matrix)
    assert sorted(errors) == np.flatnonzero(check_rows(matrix)).tolist()
    for row, error in errors.items():
        expected = row_error(tuple(matrix[row]))
        assert (error.reason, error.detail) == (expected.reason, expected.detail)
