"""The loader reads every published layout into the canonical schema, and refuses what it cannot."""

from __future__ import annotations

import csv
from pathlib import Path

import numpy as np
import pandas as pd
import pytest

from stream_ids import schema
from stream_ids.datasets import shared_data_dir
from stream_ids.errors import SchemaError
from stream_ids.loader import (
    OUTPUT_COLUMNS,
    count_feature_duplicates,
    detect_layout,
    drop_exact_duplicates,
    iter_flow_frames,
    load_flows,
    parse_timestamps,
)

ORIGINAL = "cicids2017-original"
SAMPLE_85 = f"{ORIGINAL}/Friday-Afternoon-DDoS.sample.csv"
HEAD_85 = f"{ORIGINAL}/Friday-Afternoon-DDoS.head.csv"
TEN_COLUMNS = f"{ORIGINAL}/Wednesday-0948-1010.10-columns.csv"
IMPROVED = "cicids2017-improved/Heartbleed.csv"


def shared(path: str) -> Path:
    return shared_data_dir() / path


def header_of(path: Path) -> list[str]:
    with path.open(encoding="latin-1", newline="") as handle:
        return next(csv.reader(handle))


def test_original_85_columns() -> None:
    frame = load_flows(shared(SAMPLE_85))
    assert detect_layout(header_of(shared(SAMPLE_85))) == "cicids2017-trafficlabelling"
    assert list(frame.columns) == list(OUTPUT_COLUMNS)
    assert len(frame) == 1000
    assert set(frame["label"]) == {"DDoS"} and (frame["is_attack"] == 1).all()
    assert frame["src_ip"].iloc[0] == "172.16.0.1"
    # "7/7/2017 3:56" is 15:56 local (no AM/PM; hours 1..7 are PM) = 18:56 UTC.
    assert pd.Timestamp(frame["timestamp"].iloc[0], unit="s") == pd.Timestamp("2017-07-07 18:56")


def test_original_head_keeps_infinity_and_leading_space_headers() -> None:
    frame = load_flows(shared(HEAD_85))
    assert len(frame) == 299 and (frame["is_attack"] == 0).all()
    assert np.isinf(frame["flow_bytes_per_s"]).any()
    assert set(frame["protocol"].unique()) <= {0.0, 6.0, 17.0}


def test_corrected_91_columns_are_utc() -> None:
    path = shared(IMPROVED)
    assert detect_layout(header_of(path)) == "corrected-cicflowmeter"
    frame = load_flows(path)
    raw = pd.read_csv(path)
    assert len(frame) == len(raw)
    expected = (pd.to_datetime(raw["Timestamp"]) - pd.Timestamp(0)) / pd.Timedelta(seconds=1)
    np.testing.assert_allclose(frame["timestamp"], expected, atol=1e-5)
    assert (frame["is_attack"] == 1).all()


def test_attempted_attacks_count_as_benign(tmp_path: Path) -> None:
    raw = pd.read_csv(shared(IMPROVED))
    raw.loc[:2, "Attempted Category"] = 3
    raw.loc[:2, "Label"] = "Heartbleed - Attempted"
    path = tmp_path / "attempted.csv"
    raw.to_csv(path, index=False)
    frame = load_flows(path)
    assert frame["is_attack"].tolist()[:4] == [0, 0, 0, 1]


def test_ten_column_file_is_refused_naming_the_missing_columns() -> None:
    with pytest.raises(SchemaError, match=r"lacks 73 .*total_length_fwd_packets"):
        load_flows(shared(TEN_COLUMNS))


def test_machinelearningcve_79_columns(tmp_path: Path) -> None:
    raw = pd.read_csv(shared(SAMPLE_85), encoding="latin-1")
    dropped = ["Flow ID", "Source IP", "Source Port", "Destination IP", "Protocol", "Timestamp"]
    raw = raw.drop(columns=dropped)
    raw.columns = [" " + c for c in raw.columns]  # the published files have leading spaces
    assert raw.shape[1] == 79
    path = tmp_path / "ml.csv"
    raw.to_csv(path, index=False)
    assert detect_layout(header_of(path)) == "cicids2017-machinelearningcve"
    frame = load_flows(path)
    assert len(frame) == 1000
    assert frame["src_ip"].isna().all() and frame["protocol"].isna().all()
    assert frame["timestamp"].isna().all()
    assert (frame["dst_port"] == 80).any()


def test_abbreviated_headers(tmp_path: Path) -> None:
    raw = pd.read_csv(shared(SAMPLE_85), encoding="latin-1")
    renames = {}
    for column in raw.columns:
        name = schema.canonical_name(column)
        if name in schema.FEATURE_ALIASES:
            renames[column] = schema.FEATURE_ALIASES[name][-1]  # abbreviated aliases come last
    renames.update(
        {"Source IP": "Src IP", "Destination Port": "Dst Port", "Destination IP": "Dst IP"}
    )
    raw = raw.rename(columns=renames).drop(columns=["Fwd Header Length.1"])
    raw["Label"] = ["Benign" if i % 2 else "FTP-BruteForce" for i in range(len(raw))]
    raw["Timestamp"] = "14/02/2018 08:31:01"
    path = tmp_path / "abbreviated.csv"
    raw.to_csv(path, index=False)
    assert "Tot Fwd Pkts" in header_of(path)
    assert detect_layout(header_of(path)) == "cicflowmeter-v4-abbreviated"
    frame = load_flows(path)
    assert frame["is_attack"].tolist()[:4] == [1, 0, 1, 0]
    assert pd.Timestamp(frame["timestamp"].iloc[0], unit="s") == pd.Timestamp("2018-02-14 08:31:01")
    reference = load_flows(shared(SAMPLE_85))
    pd.testing.assert_frame_equal(
        frame[list(schema.FEATURE_NAMES)], reference[list(schema.FEATURE_NAMES)]
    )


def test_latin1_label_bytes(tmp_path: Path) -> None:
    lines = shared(HEAD_85).read_bytes().splitlines(keepends=True)[:4]
    rows = [lines[0]] + [
        line.replace(b",BENIGN", b",Web Attack \x96 Brute Force") for line in lines[1:]
    ]
    path = tmp_path / "thursday.csv"
    path.write_bytes(b"".join(rows) + b",,,,,,\n")  # the published files end in empty rows
    frame = load_flows(path)
    assert frame["label"].tolist() == ["Web Attack - Brute Force"] * 3
    assert (frame["is_attack"] == 1).all()


def test_chunks_equal_one_read() -> None:
    whole = load_flows(shared(SAMPLE_85), dtype=np.float64)
    chunks = pd.concat(
        list(iter_flow_frames([shared(SAMPLE_85)], chunksize=128)), ignore_index=True
    )
    pd.testing.assert_frame_equal(whole, chunks)


def test_pm_rule_and_utc_offset() -> None:
    stamps = pd.Series(
        ["5/7/2017 9:48", "5/7/2017 12:05", "5/7/2017 1:05", "5/7/2017 5:59:30", "x", None]
    )
    got = parse_timestamps(stamps, "cicids2017-trafficlabelling")
    want = ["2017-07-05 12:48", "2017-07-05 15:05", "2017-07-05 16:05", "2017-07-05 20:59:30"]
    assert [pd.Timestamp(v, unit="s") for v in got[:4]] == [pd.Timestamp(w) for w in want]
    assert np.isnan(got[4:]).all()
    with_ampm = parse_timestamps(
        pd.Series(["14/02/2018 01:05:00 PM"]), "cicflowmeter-v4-abbreviated"
    )
    assert pd.Timestamp(with_ampm[0], unit="s") == pd.Timestamp("2018-02-14 13:05")


def test_exact_duplicates_are_counted_and_dropped() -> None:
    frame = load_flows(shared(SAMPLE_85))
    doubled = pd.concat([frame, frame.iloc[:10]], ignore_index=True)
    deduplicated, count = drop_exact_duplicates(doubled)
    assert count >= 10 and len(deduplicated) == len(doubled) - count
    assert count_feature_duplicates(deduplicated) >= 0


def test_identifiers_are_never_features() -> None:
    assert not set(schema.IDENTIFIER_NAMES) & set(schema.FEATURE_NAMES)
    assert not {"label", "is_attack", "attempted_category", "row_id"} & set(schema.FEATURE_NAMES)


def _shared_flow_files() -> list[str]:
    root = shared_data_dir()
    return sorted(str(p.relative_to(root)) for p in root.rglob("*.csv"))


@pytest.mark.parametrize("relative", _shared_flow_files())
def test_every_shared_flow_file_loads_or_is_refused_by_name(relative: str) -> None:
    """Every CSV under ../shared/data loads; the 10-column extract is refused, saying why."""
    path = shared(relative)
    if relative == TEN_COLUMNS:
        with pytest.raises(SchemaError, match="Nearest known layout"):
            load_flows(path)
        return
    frame = load_flows(path)
    assert len(frame) > 0
    assert frame[list(schema.FEATURE_NAMES)].notna().any(axis=1).all()
    assert set(frame["is_attack"].unique()) <= {0, 1}  # every shared file is labelled
