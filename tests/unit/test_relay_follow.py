"""tail -F behaviour of the relay's CSV follower and the header mapping (no broker)."""

from __future__ import annotations

import os
from pathlib import Path

import pytest

from producers.relay import CsvFollower, HeaderMap, parse_timestamp
from stream_ids.datasets import improved_csvs
from stream_ids.errors import SchemaError
from stream_ids.wire import parse_flow_message


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


# The header the Python `cicflowmeter` package (0.5.0, PyPI) writes: flow.py's get_data() keys.
PYTHON_CICFLOWMETER_HEADER = (
    "src_ip,dst_ip,src_port,dst_port,protocol,timestamp,flow_duration,flow_byts_s,flow_pkts_s,"
    "fwd_pkts_s,bwd_pkts_s,tot_fwd_pkts,tot_bwd_pkts,totlen_fwd_pkts,totlen_bwd_pkts,"
    "fwd_pkt_len_max,fwd_pkt_len_min,fwd_pkt_len_mean,fwd_pkt_len_std,bwd_pkt_len_max,"
    "bwd_pkt_len_min,bwd_pkt_len_mean,bwd_pkt_len_std,pkt_len_max,pkt_len_min,pkt_len_mean,"
    "pkt_len_std,pkt_len_var,fwd_header_len,bwd_header_len,fwd_seg_size_min,fwd_act_data_pkts,"
    "flow_iat_mean,flow_iat_max,flow_iat_min,flow_iat_std,fwd_iat_tot,fwd_iat_max,fwd_iat_min,"
    "fwd_iat_mean,fwd_iat_std,bwd_iat_tot,bwd_iat_max,bwd_iat_min,bwd_iat_mean,bwd_iat_std,"
    "fwd_psh_flags,bwd_psh_flags,fwd_urg_flags,bwd_urg_flags,fin_flag_cnt,syn_flag_cnt,"
    "rst_flag_cnt,psh_flag_cnt,ack_flag_cnt,urg_flag_cnt,ece_flag_cnt,down_up_ratio,pkt_size_avg,"
    "init_fwd_win_byts,init_bwd_win_byts,active_max,active_min,active_mean,active_std,idle_max,"
    "idle_min,idle_mean,idle_std,fwd_byts_b_avg,fwd_pkts_b_avg,bwd_byts_b_avg,bwd_pkts_b_avg,"
    "fwd_blk_rate_avg,bwd_blk_rate_avg,fwd_seg_size_avg,bwd_seg_size_avg,cwr_flag_count,"
    "subflow_fwd_pkts,subflow_bwd_pkts,subflow_fwd_byts,subflow_bwd_byts"
)


def test_python_cicflowmeter_header_maps_every_column() -> None:
    import orjson

    from stream_ids.schema import canonical_name

    header = PYTHON_CICFLOWMETER_HEADER.split(",")
    assert [name for name in header if canonical_name(name) is None] == []
    mapping = HeaderMap(header)
    row = ["192.168.1.5", "10.0.0.1", "443", "80", "6", "2019-01-12 10:00:00"]
    row += ["1.0"] * (len(header) - len(row))
    flow = mapping.flow(row, "p-1", 1.0)
    parse_flow_message(orjson.dumps(flow), b"192.168.1.5")
    # The Python extractor writes seconds; the model's features are microseconds (Java's unit).
    assert mapping.time_scale == 1e6
    assert flow["features"]["flow_duration"] == 1e6
    assert flow["features"]["idle_max"] == 1e6
    assert flow["features"]["total_fwd_packets"] == 1.0  # counts are not scaled


def test_relay_reads_a_file_as_the_loader_does_including_absolute_idle_times() -> None:
    """CIC-Darknet2020's CICFlowMeter-4 rows (idle times written as absolute times): the live
    relay gives each flow the loader's features, so nothing is refused for ~1.4e15 idle."""
    import csv
    import math

    import numpy as np

    from stream_ids.datasets import shared_data_dir
    from stream_ids.loader import load_flows
    from stream_ids.schema import FEATURE_NAMES

    path = shared_data_dir() / "other-datasets" / "cic-darknet2020" / "Darknet.head.csv"
    with path.open(encoding="latin-1", newline="") as handle:
        rows = list(csv.reader(handle))
    mapping = HeaderMap(rows[0])
    relayed = [mapping.flow(row, f"d-{n}", 1.0)["features"] for n, row in enumerate(rows[1:])]
    loaded = load_flows([path], dtype=np.float64)
    assert len(relayed) == len(loaded) > 100
    for name in FEATURE_NAMES:
        column = loaded[name].to_numpy()
        for row, features in enumerate(relayed):
            value = features[name]
            value = math.nan if value is None else float(value)
            assert value == column[row] or (math.isnan(value) and math.isnan(column[row])), name
    assert max(features["idle_max"] for features in relayed) < 1.3e8
