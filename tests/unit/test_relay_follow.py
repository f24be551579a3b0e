"""tail -F behaviour of the relay's CSV follower and the header mapping (no broker)."""

from __future__ import annotations

import os
from pathlib import Path

import pytest

from producers.relay import CsvFollower, HeaderMap, parse_timestamp
from stream_ids.datasets import improved_csvs
from stream_ids.errors import SchemaError
from stream_ids.records import parse_flow_message


def _java_lines(n: int) -> tuple[str, list[str]]:
    path = next(p for p in improved_csvs() if p.name == "DDoS.csv")
    with path.open(encoding="latin-1") as handle:
        header = handle.readline().rstrip("\n")
        rows = [handle.readline().rstrip("\n") for _ in range(n)]
    return header, rows


def test_follow_appends_partial_lines_truncation_and_rotation(tmp_path: Path) -> None:
    header, rows = _java_lines(6)
    path = tmp_path / "flows.csv"
    path.write_text(header + "\n" + rows[0] + "\n" + rows[1][:30])
    follower = CsvFollower(path)
    assert len(follower.poll()) == 1  # the partial second row waits for its newline
    with path.open("a") as handle:
        handle.write(rows[1][30:] + "\n" + rows[2] + "\n")
    assert len(follower.poll()) == 2
    assert follower.poll() == []
    path.write_text(header + "\n" + rows[3] + "\n")  # truncated and rewritten
    assert len(follower.poll()) == 1
    rotated = tmp_path / "flows.csv.1"
    os.rename(path, rotated)
    with rotated.open("a") as handle:  # the writer finishes the old file ...
        handle.write(rows[4] + "\n")
    path.write_text(header + "\n" + rows[5] + "\n")  # ... and starts a new one
    got = follower.poll()
    assert [r[0] for r in got] == [rows[4].split(",")[0], rows[5].split(",")[0]]
    follower.close()


def test_java_row_becomes_a_valid_flow() -> None:
    import orjson

    header, rows = _java_lines(3)
    mapping = HeaderMap(header.split(","))
    for index, row in enumerate(rows):
        flow = mapping.flow(row.split(","), f"x-{index}", 1.0)
        parsed = parse_flow_message(orjson.dumps(flow), flow["src_ip"].encode())
        assert parsed.src_ip == "172.16.0.1"
        assert parsed.timestamp > 1.4e9


def test_header_without_features_is_refused() -> None:
    with pytest.raises(SchemaError, match="lacks"):
        HeaderMap(["Src IP", "Dst IP", "Timestamp", "Flow Duration"])


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("1499450193.5", 1499450193.5),
        ("2017-07-07 18:56:33.8", 1499453793.8),
        ("07/07/2017 06:56:33 PM", 1499453793.0),
    ],
)
def test_timestamps(text: str, expected: float) -> None:
    assert parse_timestamp(text) == pytest.approx(expected, abs=1e-3)
