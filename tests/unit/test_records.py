"""Validation of streamed flow records: each bad kind gets its reason code."""

from __future__ import annotations

import math

import orjson
import pytest
from streaming_fakes import flow

from stream_ids.errors import InvalidRecordError
from stream_ids.records import REASONS, Verdict, dead_letter, parse_flow_message, parse_message


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
