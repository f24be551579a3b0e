"""The canonical mapping table: every published header maps, and no alias maps twice."""

from __future__ import annotations

import csv

import pytest

from stream_ids import schema
from stream_ids.datasets import shared_data_dir


def _header(path: str) -> list[str]:
    with (shared_data_dir() / path).open(encoding="latin-1", newline="") as handle:
        return next(csv.reader(handle))


@pytest.mark.parametrize(
    "path",
    [
        "cicids2017-improved/DDoS.csv",
        "cicids2017-original/Friday-Afternoon-DDoS.sample.csv",
    ],
)
def test_every_header_of_the_published_layouts_has_a_canonical_name(path: str) -> None:
    header = _header(path)
    unknown = [column for column in header if schema.canonical_name(column) is None]
    assert unknown == []
    mapped = {schema.canonical_name(column) for column in header}
    assert set(schema.FEATURE_NAMES) <= mapped


def test_abbreviated_and_snake_case_headers_map_to_the_same_feature() -> None:
    assert schema.canonical_name("Tot Fwd Pkts") == "total_fwd_packets"
    assert schema.canonical_name("tot_fwd_pkts") == "total_fwd_packets"
    assert schema.canonical_name(" Total Fwd Packets") == "total_fwd_packets"
    assert schema.canonical_name("Flow Byts/s") == "flow_bytes_per_s"
    assert schema.canonical_name("flow_byts_s") == "flow_bytes_per_s"
    assert schema.canonical_name("Init Fwd Win Byts") == "init_win_bytes_fwd"
    assert schema.canonical_name("no such column") is None


def test_identifiers_are_not_features() -> None:
    assert not set(schema.IDENTIFIER_NAMES) & set(schema.FEATURE_NAMES)
    assert set(schema.RATE_FEATURES) <= set(schema.FEATURE_NAMES)


@pytest.mark.parametrize(
    ("label", "benign"),
    [("BENIGN", True), ("Benign", True), (" benign ", True), ("DDoS", False),
     ("FTP-BruteForce", False), ("Web Attack \x96 XSS", False)],
)
def test_any_label_other_than_benign_is_an_attack(label: str, benign: bool) -> None:
    assert schema.is_benign_label(label) is benign
