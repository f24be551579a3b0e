"""The transform: deterministic, JSON round trip with a hash, one path for frames and records."""

from __future__ import annotations

import hashlib
import json
from pathlib import Path

import numpy as np
import pytest

from stream_ids import schema
from stream_ids.datasets import shared_data_dir
from stream_ids.errors import ArtifactError, SchemaError
from stream_ids.loader import load_flows
from stream_ids.transform import PROTOCOL_SLOTS, FlowTransform


@pytest.fixture(scope="module")
def frame():
    return load_flows(
        shared_data_dir() / "cicids2017-original/Friday-Afternoon-DDoS.head.csv", dtype=np.float64
    )


def test_deterministic_and_round_trip(frame, tmp_path: Path) -> None:
    first = FlowTransform().fit(frame)
    second = FlowTransform().fit(frame)
    assert first.sha256 == second.sha256
    path = tmp_path / "transform.json"
    digest = first.to_json(path)
    assert digest == hashlib.sha256(path.read_bytes()).hexdigest() == first.sha256
    loaded = FlowTransform.from_json(path)
    assert loaded.sha256 == first.sha256
    np.testing.assert_array_equal(loaded.transform_many(frame), first.transform_many(frame))
    out = first.transform_many(frame)
    assert out.dtype == np.float32 and out.shape == (len(frame), len(schema.FEATURE_NAMES) + 4)
    assert out.min() >= 0.0 and out.max() <= 1.0


def test_records_and_frames_give_the_same_output(frame) -> None:
    transform = FlowTransform().fit(frame)
    flat = frame[[*schema.FEATURE_NAMES, "protocol"]].to_dict("records")
    nested = [
        {"protocol": row["protocol"], "features": {n: row[n] for n in schema.FEATURE_NAMES}}
        for row in flat
    ]
    expected = transform.transform_many(frame)
    np.testing.assert_array_equal(transform.transform_many(flat), expected)
    np.testing.assert_array_equal(transform.transform_many(nested), expected)


def test_nonfinite_rule_clipping_and_protocol(frame) -> None:
    transform = FlowTransform().fit(frame)
    index = transform.feature_names.index("flow_bytes_per_s")
    base = {name: 1.0 for name in schema.FEATURE_NAMES}
    records = [
        {**base, "flow_bytes_per_s": float("inf"), "protocol": 6},
        {**base, "flow_bytes_per_s": float("nan"), "protocol": 17},
        {**base, "flow_bytes_per_s": None, "protocol": 1},
        {**base, "flow_bytes_per_s": 1e30, "protocol": None},
        {**base, "flow_bytes_per_s": -1e30},
    ]
    out = transform.transform_many(records)
    zero = transform.transform_many([{**base, "flow_bytes_per_s": 0.0}])[0, index]
    assert out[0, index] == 1.0 and out[3, index] == 1.0 and out[4, index] == 0.0
    assert out[1, index] == zero and out[2, index] == zero
    proto = out[:, transform.n_features :]
    assert proto.argmax(axis=1).tolist() == [0, 1, 2, 3, 3]
    assert (proto.sum(axis=1) == 1).all()
    assert PROTOCOL_SLOTS[3] == "unknown"


def test_missing_features_are_refused(frame) -> None:
    transform = FlowTransform().fit(frame)
    with pytest.raises(SchemaError, match="flow_duration"):
        transform.transform_many([{"protocol": 6}])
    with pytest.raises(SchemaError, match="flow_duration"):
        transform.transform_many(frame.drop(columns=["flow_duration"]))


def test_identifiers_are_not_inputs(frame) -> None:
    transform = FlowTransform().fit(frame)
    assert not set(transform.output_names) & {*schema.IDENTIFIER_NAMES, "label", "is_attack"}
    changed = frame.copy()
    changed["src_ip"], changed["dst_port"], changed["timestamp"] = "10.0.0.1", 1.0, 0.0
    np.testing.assert_array_equal(
        transform.transform_many(changed), transform.transform_many(frame)
    )


def test_bad_json_is_an_artifact_error(tmp_path: Path) -> None:
    path = tmp_path / "t.json"
    path.write_text(json.dumps({"format": "other"}))
    with pytest.raises(ArtifactError):
        FlowTransform.from_json(path)
