"""Every header spelling CICFlowMeter has written loads through the one alias table.

Each test writes a header line of one extractor version by hand (not taken from the code under
test), puts real CICIDS2017 flows under it in that column order, and checks that the loader
finds the layout, every feature with the same values, the identifiers and the labels.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pandas as pd
import pytest

from stream_ids import schema
from stream_ids.datasets import shared_data_dir
from stream_ids.errors import SchemaError
from stream_ids.layouts import plan_header
from stream_ids.loader import EmptyFileWarning, detect_layout, load_flows

# The 76 features as Java CICFlowMeter 3.x/4.x writes them in its own output files (*_Flow.csv
# offline, *_online.csv online): CICIDS2017's names, but spelled out without underscores.
JAVA_FEATURES = (
    "Flow Duration,Total Fwd Packets,Total Backward Packets,Total Length of Fwd Packets,"
    "Total Length of Bwd Packets,Fwd Packet Length Max,Fwd Packet Length Min,"
    "Fwd Packet Length Mean,Fwd Packet Length Std,Bwd Packet Length Max,Bwd Packet Length Min,"
    "Bwd Packet Length Mean,Bwd Packet Length Std,Flow Bytes/s,Flow Packets/s,Flow IAT Mean,"
    "Flow IAT Std,Flow IAT Max,Flow IAT Min,Fwd IAT Total,Fwd IAT Mean,Fwd IAT Std,Fwd IAT Max,"
    "Fwd IAT Min,Bwd IAT Total,Bwd IAT Mean,Bwd IAT Std,Bwd IAT Max,Bwd IAT Min,Fwd PSH Flags,"
    "Bwd PSH Flags,Fwd URG Flags,Bwd URG Flags,Fwd Header Length,Bwd Header Length,"
    "Fwd Packets/s,Bwd Packets/s,Min Packet Length,Max Packet Length,Packet Length Mean,"
    "Packet Length Std,Packet Length Variance,FIN Flag Count,SYN Flag Count,RST Flag Count,"
    "PSH Flag Count,ACK Flag Count,URG Flag Count,CWE Flag Count,ECE Flag Count,Down/Up Ratio,"
    "Average Packet Size,Avg Fwd Segment Size,Avg Bwd Segment Size,Fwd Avg Bytes/Bulk,"
    "Fwd Avg Packets/Bulk,Fwd Avg Bulk Rate,Bwd Avg Bytes/Bulk,Bwd Avg Packets/Bulk,"
    "Bwd Avg Bulk Rate,Subflow Fwd Packets,Subflow Fwd Bytes,Subflow Bwd Packets,"
    "Subflow Bwd Bytes,Init Win Bytes Fwd,Init Win Bytes Bwd,Act Data Pkt Fwd,Min Seg Size Fwd,"
    "Active Mean,Active Std,Active Max,Active Min,Idle Mean,Idle Std,Idle Max,Idle Min"
)
JAVA_OFFLINE = (
    "Flow ID,Src IP,Src Port,Dst IP,Dst Port,Protocol,Timestamp," + JAVA_FEATURES + ",Label"
)
# The online mode of the same releases, as CICIDS2017 was published: Source/Destination,
# underscores in the window and segment names, a space after every comma.
JAVA_ONLINE = ", ".join(
    (
        "Flow ID,Source IP,Source Port,Destination IP,Destination Port,Protocol,Timestamp,"
        + JAVA_FEATURES.replace("Init Win Bytes Fwd", "Init_Win_bytes_forward")
        .replace("Init Win Bytes Bwd", "Init_Win_bytes_backward")
        .replace("Act Data Pkt Fwd", "act_data_pkt_fwd")
        .replace("Min Seg Size Fwd", "min_seg_size_forward")
        + ",Label"
    ).split(",")
)
# CICFlowMeter-V4 as CSE-CIC-IDS2018 was published (80 columns with Timestamp, 79 without).
V4_ABBREVIATED = (
    "Dst Port,Protocol,Timestamp,Flow Duration,Tot Fwd Pkts,Tot Bwd Pkts,TotLen Fwd Pkts,"
    "TotLen Bwd Pkts,Fwd Pkt Len Max,Fwd Pkt Len Min,Fwd Pkt Len Mean,Fwd Pkt Len Std,"
    "Bwd Pkt Len Max,Bwd Pkt Len Min,Bwd Pkt Len Mean,Bwd Pkt Len Std,Flow Byts/s,Flow Pkts/s,"
    "Flow IAT Mean,Flow IAT Std,Flow IAT Max,Flow IAT Min,Fwd IAT Tot,Fwd IAT Mean,Fwd IAT Std,"
    "Fwd IAT Max,Fwd IAT Min,Bwd IAT Tot,Bwd IAT Mean,Bwd IAT Std,Bwd IAT Max,Bwd IAT Min,"
    "Fwd PSH Flags,Bwd PSH Flags,Fwd URG Flags,Bwd URG Flags,Fwd Header Len,Bwd Header Len,"
    "Fwd Pkts/s,Bwd Pkts/s,Pkt Len Min,Pkt Len Max,Pkt Len Mean,Pkt Len Std,Pkt Len Var,"
    "FIN Flag Cnt,SYN Flag Cnt,RST Flag Cnt,PSH Flag Cnt,ACK Flag Cnt,URG Flag Cnt,"
    "CWE Flag Count,ECE Flag Cnt,Down/Up Ratio,Pkt Size Avg,Fwd Seg Size Avg,Bwd Seg Size Avg,"
    "Fwd Byts/b Avg,Fwd Pkts/b Avg,Fwd Blk Rate Avg,Bwd Byts/b Avg,Bwd Pkts/b Avg,"
    "Bwd Blk Rate Avg,Subflow Fwd Pkts,Subflow Fwd Byts,Subflow Bwd Pkts,Subflow Bwd Byts,"
    "Init Fwd Win Byts,Init Bwd Win Byts,Fwd Act Data Pkts,Fwd Seg Size Min,Active Mean,"
    "Active Std,Active Max,Active Min,Idle Mean,Idle Std,Idle Max,Idle Min,Label"
)
# The corrected re-extractions (Engelen et al. for 2017, Liu et al. for 2018), 91 columns.
CORRECTED = (
    "id,Flow ID,Src IP,Src Port,Dst IP,Dst Port,Protocol,Timestamp,Flow Duration,"
    "Total Fwd Packet,Total Bwd packets,Total Length of Fwd Packet,Total Length of Bwd Packet,"
    "Fwd Packet Length Max,Fwd Packet Length Min,Fwd Packet Length Mean,Fwd Packet Length Std,"
    "Bwd Packet Length Max,Bwd Packet Length Min,Bwd Packet Length Mean,Bwd Packet Length Std,"
    "Flow Bytes/s,Flow Packets/s,Flow IAT Mean,Flow IAT Std,Flow IAT Max,Flow IAT Min,"
    "Fwd IAT Total,Fwd IAT Mean,Fwd IAT Std,Fwd IAT Max,Fwd IAT Min,Bwd IAT Total,Bwd IAT Mean,"
    "Bwd IAT Std,Bwd IAT Max,Bwd IAT Min,Fwd PSH Flags,Bwd PSH Flags,Fwd URG Flags,"
    "Bwd URG Flags,Fwd RST Flags,Bwd RST Flags,Fwd Header Length,Bwd Header Length,"
    "Fwd Packets/s,Bwd Packets/s,Packet Length Min,Packet Length Max,Packet Length Mean,"
    "Packet Length Std,Packet Length Variance,FIN Flag Count,SYN Flag Count,RST Flag Count,"
    "PSH Flag Count,ACK Flag Count,URG Flag Count,CWR Flag Count,ECE Flag Count,Down/Up Ratio,"
    "Average Packet Size,Fwd Segment Size Avg,Bwd Segment Size Avg,Fwd Bytes/Bulk Avg,"
    "Fwd Packet/Bulk Avg,Fwd Bulk Rate Avg,Bwd Bytes/Bulk Avg,Bwd Packet/Bulk Avg,"
    "Bwd Bulk Rate Avg,Subflow Fwd Packets,Subflow Fwd Bytes,Subflow Bwd Packets,"
    "Subflow Bwd Bytes,FWD Init Win Bytes,Bwd Init Win Bytes,Fwd Act Data Pkts,Fwd Seg Size Min,"
    "Active Mean,Active Std,Active Max,Active Min,Idle Mean,Idle Std,Idle Max,Idle Min,"
    "ICMP Code,ICMP Type,Total TCP Flow Time,Label,Attempted Category"
)
# CIC-Darknet2020: CICFlowMeter-4 long names without the corrected extras, two Label columns.
DARKNET = (
    CORRECTED.removeprefix("id,")
    .replace("Fwd RST Flags,Bwd RST Flags,", "")
    .replace("CWR Flag Count", "CWE Flag Count")
    .replace(",ICMP Code,ICMP Type,Total TCP Flow Time,Label,Attempted Category", ",Label,Label")
)
# CIC-DDoS2019: a pandas index, CICIDS2017's spaced names, the duplicate header, two extras.
DDOS2019 = (
    "Unnamed: 0,Flow ID, Source IP, Source Port, Destination IP, Destination Port, Protocol,"
    " Timestamp, "
    + ", ".join(JAVA_FEATURES.split(","))
    .replace("Init Win Bytes Fwd", "Init_Win_bytes_forward")
    .replace("Init Win Bytes Bwd", "Init_Win_bytes_backward")
    .replace("Act Data Pkt Fwd", "act_data_pkt_fwd")
    .replace("Min Seg Size Fwd", "min_seg_size_forward")
    .replace("Avg Bwd Segment Size,", "Avg Bwd Segment Size, Fwd Header Length.1,")
    + ", SimillarHTTP, Inbound, Label"
)
# The Python cicflowmeter package (PyPI, 0.5.x): snake_case, seconds, no label.
PYTHON_CICFLOWMETER = (
    "src_ip,dst_ip,src_port,dst_port,protocol,timestamp,flow_duration,flow_byts_s,flow_pkts_s,"
    "fwd_pkts_s,bwd_pkts_s,tot_fwd_pkts,tot_bwd_pkts,totlen_fwd_pkts,totlen_bwd_pkts,"
    "fwd_pkt_len_max,fwd_pkt_len_min,fwd_pkt_len_mean,fwd_pkt_len_std,bwd_pkt_len_max,"
    "bwd_pkt_len_min,bwd_pkt_len_mean,bwd_pkt_len_std,pkt_len_max,pkt_len_min,pkt_len_mean,"
    "pkt_len_std,pkt_len_var,fwd_header_len,bwd_header_len,fwd_seg_size_min,fwd_act_data_pkts,"
    "flow_iat_mean,flow_iat_max,flow_iat_min,flow_iat_std,fwd_iat_tot,fwd_iat_max,fwd_iat_min,"
    "fwd_iat_mean,fwd_iat_std,bwd_iat_tot,bwd_iat_max,bwd_iat_min,bwd_iat_mean,bwd_iat_std,"
    "fwd_psh_flags,bwd_psh_flags,fwd_urg_flags,bwd_urg_flags,fin_flag_cnt,syn_flag_cnt,"
    "rst_flag_cnt,psh_flag_cnt,ack_flag_cnt,urg_flag_cnt,ece_flag_cnt,down_up_ratio,"
    "pkt_size_avg,init_fwd_win_byts,init_bwd_win_byts,active_max,active_min,active_mean,"
    "active_std,idle_max,idle_min,idle_mean,idle_std,fwd_byts_b_avg,fwd_pkts_b_avg,"
    "bwd_byts_b_avg,bwd_pkts_b_avg,fwd_blk_rate_avg,bwd_blk_rate_avg,fwd_seg_size_avg,"
    "bwd_seg_size_avg,cwr_flag_count,subflow_fwd_pkts,subflow_bwd_pkts,subflow_fwd_byts,"
    "subflow_bwd_byts"
)

N_ROWS = 20


@pytest.fixture(scope="module")
def reference() -> pd.DataFrame:
    """Real flows (benign and attack) of the corrected CICIDS2017, canonical, float64."""
    improved = shared_data_dir() / "cicids2017-improved"
    frame = load_flows([improved / "BENIGN.csv", improved / "SSH-Patator.csv"], dtype=np.float64)
    return pd.concat([frame.iloc[: N_ROWS // 2], frame.iloc[-N_ROWS // 2 :]], ignore_index=True)


def write_variant(
    tmp_path: Path,
    header: str,
    reference: pd.DataFrame,
    *,
    timestamp: str = "07/07/2017 03:56:01 PM",
    labels: tuple[str, ...] = ("BENIGN",),
    time_unit: float = 1.0,
    line_end: str = "\n",
) -> Path:
    """The reference flows under ``header``, each column filled from its canonical value."""
    columns = header.split(",")
    label_columns = [i for i, c in enumerate(columns) if schema.canonical_name(c) == "label"]
    lines = [header]
    for _, flow in reference.iterrows():
        cells = []
        for position, column in enumerate(columns):
            name = schema.canonical_name(column)
            if name == "label":
                cells.append(labels[min(label_columns.index(position), len(labels) - 1)]
                             if flow["is_attack"] == 0 else "SSH-Patator")
            elif name == "timestamp":
                cells.append(timestamp)
            elif name in schema.TIME_FEATURES:
                cells.append(repr(float(flow[name]) / time_unit))
            elif name in schema.FEATURE_ALIASES or name in ("src_port", "dst_port", "protocol"):
                value = flow[name]
                cells.append("" if pd.isna(value) else repr(float(value)))
            elif name in ("src_ip", "dst_ip", "flow_id"):
                cells.append(str(flow[name]))
            elif name == "attempted_category":
                cells.append("-1")
            else:
                cells.append("0")  # extras: row id, ICMP, SimillarHTTP, Inbound, ...
        lines.append(",".join(cells))
    path = tmp_path / "flows.csv"
    path.write_bytes((line_end.join(lines) + line_end).encode())
    return path


def assert_same_features(frame: pd.DataFrame, reference: pd.DataFrame) -> None:
    for name in schema.FEATURE_NAMES:
        np.testing.assert_allclose(
            frame[name].to_numpy(np.float64), reference[name].to_numpy(np.float64),
            rtol=1e-9, err_msg=name,
        )


@pytest.mark.parametrize(
    ("header", "layout"),
    [
        (JAVA_OFFLINE, "java-cicflowmeter"),
        # CICIDS2017 was published as this mode's output: the same layout.
        (JAVA_ONLINE, "cicids2017-trafficlabelling"),
        (CORRECTED, "corrected-cicflowmeter"),
        (DDOS2019, "cic-ddos2019"),
    ],
    ids=["java-offline", "java-online-spaced", "corrected-2017-2018", "cic-ddos2019"],
)
def test_java_cicflowmeter_layouts_load_with_ids_and_labels(
    tmp_path: Path, reference: pd.DataFrame, header: str, layout: str
) -> None:
    path = write_variant(tmp_path, header, reference)
    assert detect_layout(header.split(",")) == layout
    frame = load_flows(path, dtype=np.float64)
    assert len(frame) == N_ROWS
    assert_same_features(frame, reference)
    assert frame["src_ip"].tolist() == reference["src_ip"].tolist()
    assert frame["is_attack"].tolist() == reference["is_attack"].tolist()
    # CICIDS2017's own files were written at UTC-3 (the loader adds 3 h); others as written.
    expected = "2017-07-07 18:56:01" if layout.startswith("cicids2017") else "2017-07-07 15:56:01"
    assert pd.Timestamp(frame["timestamp"].iloc[0], unit="s") == pd.Timestamp(expected)


@pytest.mark.parametrize("with_timestamp", [True, False], ids=["80-columns", "79-columns"])
def test_cicflowmeter_v4_abbreviated_as_in_cse_cic_ids2018(
    tmp_path: Path, reference: pd.DataFrame, with_timestamp: bool
) -> None:
    header = V4_ABBREVIATED if with_timestamp else V4_ABBREVIATED.replace("Timestamp,", "")
    assert len(header.split(",")) == (80 if with_timestamp else 79)
    path = write_variant(tmp_path, header, reference, timestamp="14/02/2018 08:31:01",
                         labels=("Benign",))
    assert detect_layout(header.split(",")) == "cicflowmeter-v4-abbreviated"
    frame = load_flows(path, dtype=np.float64)
    assert_same_features(frame, reference)
    assert frame["src_ip"].isna().all()
    assert frame["is_attack"].tolist() == reference["is_attack"].tolist()
    assert frame["timestamp"].notna().all() == with_timestamp


def test_darknet_two_label_columns_are_traffic_classes_not_attacks(
    tmp_path: Path, reference: pd.DataFrame
) -> None:
    benign = reference.loc[reference["is_attack"] == 0]
    path = write_variant(tmp_path, DARKNET, benign, labels=("Non-Tor", "AUDIO-STREAMING"))
    assert DARKNET.split(",").count("Label") == 2
    assert detect_layout(DARKNET.split(",")) == "cicflowmeter-v4-long"
    frame = load_flows(path, dtype=np.float64)
    assert_same_features(frame, benign)
    assert set(frame["label"]) == {"Non-Tor/AUDIO-STREAMING"}
    assert (frame["is_attack"] == 0).all()


def test_python_cicflowmeter_snake_case_crlf_seconds_no_label(
    tmp_path: Path, reference: pd.DataFrame
) -> None:
    path = write_variant(tmp_path, PYTHON_CICFLOWMETER, reference, time_unit=1e6,
                         timestamp="2023-05-01 10:00:00", line_end="\r\n")
    assert b"\r\n" in path.read_bytes()
    assert detect_layout(PYTHON_CICFLOWMETER.split(",")) == "python-cicflowmeter"
    frame = load_flows(path, dtype=np.float64)
    assert_same_features(frame, reference)  # seconds came back as microseconds
    assert frame["label"].isna().all() and (frame["is_attack"] == -1).all()
    assert pd.Timestamp(frame["timestamp"].iloc[0], unit="s") == pd.Timestamp("2023-05-01 10:00")


@pytest.mark.parametrize(
    ("spelling", "canonical"),
    [
        ("Init Win Bytes Fwd", "init_win_bytes_fwd"),
        ("Init_Win_bytes_forward", "init_win_bytes_fwd"),
        ("FWD Init Win Bytes", "init_win_bytes_fwd"),
        ("Init Fwd Win Byts", "init_win_bytes_fwd"),
        ("init_fwd_win_byts", "init_win_bytes_fwd"),
        ("Min Seg Size Fwd", "fwd_seg_size_min"),
        ("min_seg_size_forward", "fwd_seg_size_min"),
        ("Act Data Pkt Fwd", "fwd_act_data_packets"),
        ("act_data_pkt_fwd", "fwd_act_data_packets"),
        (" Bwd Avg Packets/Bulk", "bwd_packets_per_bulk_avg"),
        ("Bwd Pkts/b Avg", "bwd_packets_per_bulk_avg"),
        ("Src IP", "src_ip"),
        (" Source IP", "src_ip"),
        ("Dst Port", "dst_port"),
        ("Tot Fwd Pkts", "total_fwd_packets"),
        ("Total Fwd Packet", "total_fwd_packets"),
        ("Total Bwd packets", "total_bwd_packets"),
        ("TotLen Fwd Pkts", "total_length_fwd_packets"),
        ("totlen_fwd_pkts", "total_length_fwd_packets"),
        ("CWE Flag Count", "cwr_flag_count"),
        ("Fwd Header Length.1", "fwd_header_length_duplicate"),
    ],
)
def test_spellings_map_to_one_canonical_name(spelling: str, canonical: str) -> None:
    assert schema.canonical_name(spelling) == canonical


def test_a_header_lacking_features_names_them_and_the_nearest_layout(tmp_path: Path) -> None:
    header = V4_ABBREVIATED.replace("Fwd Seg Size Min,", "").replace("Pkt Len Var,", "")
    path = tmp_path / "short.csv"
    path.write_text(header + "\n" + ",".join(["1"] * len(header.split(","))) + "\n")
    with pytest.raises(
        SchemaError,
        match=r"lacks 2 of the 76 .*packet_length_variance, fwd_seg_size_min\. "
        r"Nearest known layout: 'cicflowmeter-v4-abbreviated'",
    ):
        load_flows(path)


def test_unknown_columns_are_reported_not_fatal() -> None:
    plan = plan_header([*JAVA_OFFLINE.split(","), "Vendor Extra"])
    assert plan.unmapped == ("Vendor Extra",)
    assert plan.missing_features == ()


@pytest.mark.parametrize("content", [b"", JAVA_OFFLINE.encode() + b"\n"], ids=["empty", "header"])
def test_empty_files_are_skipped_with_a_warning(
    tmp_path: Path, reference: pd.DataFrame, content: bytes
) -> None:
    empty = tmp_path / "a-empty.csv"
    empty.write_bytes(content)
    good = write_variant(tmp_path, JAVA_OFFLINE, reference)
    with pytest.warns(EmptyFileWarning, match="a-empty.csv"):
        frame = load_flows([empty, good])
    assert len(frame) == N_ROWS


def test_folders_and_gzip_files_load(tmp_path: Path, reference: pd.DataFrame) -> None:
    import gzip

    plain = write_variant(tmp_path, CORRECTED, reference)
    folder = tmp_path / "capture"
    folder.mkdir()
    (folder / "day1.csv.gz").write_bytes(gzip.compress(plain.read_bytes()))
    (folder / "notes.txt").write_text("not a flow file")
    frame = load_flows(folder, dtype=np.float64)
    assert_same_features(frame, reference)


@pytest.mark.parametrize(
    ("label", "expected"),
    [("BENIGN", 0), (" Benign", 0), ("Non-Tor", 0), ("NonVPN", 0), ("DDoS", 1),
     ("Infilteration", 1), ("NeedManualLabel", -1), ("No Label", -1), ("", -1), (None, -1)],
)
def test_label_classes(label: str | None, expected: int) -> None:
    assert schema.label_class(label) == expected


def test_absolute_idle_times_read_as_no_period() -> None:
    """CICFlowMeter-4 (CIC-Darknet2020) wrote idle statistics as absolute times; the loader
    reads a group longer than its flow as 0, and keeps rounded periods of the original files."""
    from stream_ids.datasets import shared_data_dir
    from stream_ids.layouts import repair_periods
    from stream_ids.loader import load_flows

    darknet = load_flows([shared_data_dir() / "other-datasets" / "cic-darknet2020"])
    assert (darknet["idle_max"] <= darknet["flow_duration"] * 1.01).all()
    # rows 4+ of the head carry ~1.44e15 in the file: now 0, with their flow's other values
    assert darknet["idle_max"].max() < 1.3e8
    row = {"flow_duration": 10_453_138.0, "active_mean": 696.0, "active_max": 696.0,
           "active_min": 696.0, "active_std": 0.0, "idle_mean": 10_500_000.0,
           "idle_max": 10_500_000.0, "idle_min": 10_500_000.0, "idle_std": 0.0}
    kept = dict(row)
    assert repair_periods(kept) == 0 and kept == row  # CICIDS2017's 3-digit rounding
    absolute = dict(row, idle_mean=1.4377e15, idle_max=1.4377e15, idle_std=3.1e6)
    assert repair_periods(absolute) == 1
    assert absolute["idle_mean"] == absolute["idle_std"] == 0.0
    assert absolute["active_mean"] == 696.0
