"""The CSV layouts CICFlowMeter versions have written, and which one a file's header is.

:mod:`stream_ids.schema` maps each column name to a canonical name (one alias table for every
extractor); this module reads a whole header: where each canonical column is, which columns
hold labels, which layout the header resembles most, and what that layout means for the values
(the Python ``cicflowmeter`` writes durations in seconds, Java CICFlowMeter in microseconds).
The loader (``train``, ``evaluate``, ``score``, ``replay``) and the live ``relay`` both read
headers through :func:`plan_header`, so a file means the same thing on every path.

Each layout below carries the header line its extractor writes (abbreviated where it repeats
another). A header is matched to the layout whose line shares most of its exact spellings
(Jaccard similarity of the stripped, lower-cased names), after one structural rule: a header
written mostly in snake_case is the Python ``cicflowmeter``'s (its time unit differs, so that
decision must not rest on a similarity score).
"""

from __future__ import annotations

from collections.abc import Iterable, MutableMapping, Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np

from stream_ids import schema
from stream_ids.errors import SchemaError

PYTHON_CICFLOWMETER = "python-cicflowmeter"
UNKNOWN_LAYOUT = "unknown"

# The 76 features in the spelling of the original CICIDS2017 CSVs (Java CICFlowMeter-V3), with
# the published files' leading spaces; other layouts below are derived from it where they only
# rename a few columns.
_CICIDS2017_FEATURES = (
    " Flow Duration, Total Fwd Packets, Total Backward Packets,Total Length of Fwd Packets,"
    " Total Length of Bwd Packets, Fwd Packet Length Max, Fwd Packet Length Min,"
    " Fwd Packet Length Mean, Fwd Packet Length Std,Bwd Packet Length Max,"
    " Bwd Packet Length Min, Bwd Packet Length Mean, Bwd Packet Length Std,Flow Bytes/s,"
    " Flow Packets/s, Flow IAT Mean, Flow IAT Std, Flow IAT Max, Flow IAT Min,Fwd IAT Total,"
    " Fwd IAT Mean, Fwd IAT Std, Fwd IAT Max, Fwd IAT Min,Bwd IAT Total, Bwd IAT Mean,"
    " Bwd IAT Std, Bwd IAT Max, Bwd IAT Min,Fwd PSH Flags, Bwd PSH Flags, Fwd URG Flags,"
    " Bwd URG Flags, Fwd Header Length, Bwd Header Length,Fwd Packets/s, Bwd Packets/s,"
    " Min Packet Length, Max Packet Length, Packet Length Mean, Packet Length Std,"
    " Packet Length Variance,FIN Flag Count, SYN Flag Count, RST Flag Count, PSH Flag Count,"
    " ACK Flag Count, URG Flag Count, CWE Flag Count, ECE Flag Count, Down/Up Ratio,"
    " Average Packet Size, Avg Fwd Segment Size, Avg Bwd Segment Size, Fwd Header Length.1,"
    "Fwd Avg Bytes/Bulk, Fwd Avg Packets/Bulk, Fwd Avg Bulk Rate, Bwd Avg Bytes/Bulk,"
    " Bwd Avg Packets/Bulk,Bwd Avg Bulk Rate,Subflow Fwd Packets, Subflow Fwd Bytes,"
    " Subflow Bwd Packets, Subflow Bwd Bytes,Init_Win_bytes_forward, Init_Win_bytes_backward,"
    " act_data_pkt_fwd, min_seg_size_forward,Active Mean, Active Std, Active Max, Active Min,"
    "Idle Mean, Idle Std, Idle Max, Idle Min"
)
# CICFlowMeter-4's long names (its GitHub master; CIC-Darknet2020, the corrected re-extractions).
_LONG_FEATURES = (
    "Flow Duration,Total Fwd Packet,Total Bwd packets,Total Length of Fwd Packet,"
    "Total Length of Bwd Packet,Fwd Packet Length Max,Fwd Packet Length Min,"
    "Fwd Packet Length Mean,Fwd Packet Length Std,Bwd Packet Length Max,Bwd Packet Length Min,"
    "Bwd Packet Length Mean,Bwd Packet Length Std,Flow Bytes/s,Flow Packets/s,Flow IAT Mean,"
    "Flow IAT Std,Flow IAT Max,Flow IAT Min,Fwd IAT Total,Fwd IAT Mean,Fwd IAT Std,Fwd IAT Max,"
    "Fwd IAT Min,Bwd IAT Total,Bwd IAT Mean,Bwd IAT Std,Bwd IAT Max,Bwd IAT Min,Fwd PSH Flags,"
    "Bwd PSH Flags,Fwd URG Flags,Bwd URG Flags,{rst}Fwd Header Length,Bwd Header Length,"
    "Fwd Packets/s,Bwd Packets/s,Packet Length Min,Packet Length Max,Packet Length Mean,"
    "Packet Length Std,Packet Length Variance,FIN Flag Count,SYN Flag Count,RST Flag Count,"
    "PSH Flag Count,ACK Flag Count,URG Flag Count,{cwr} Flag Count,ECE Flag Count,Down/Up Ratio,"
    "Average Packet Size,Fwd Segment Size Avg,Bwd Segment Size Avg,Fwd Bytes/Bulk Avg,"
    "Fwd Packet/Bulk Avg,Fwd Bulk Rate Avg,Bwd Bytes/Bulk Avg,Bwd Packet/Bulk Avg,"
    "Bwd Bulk Rate Avg,Subflow Fwd Packets,Subflow Fwd Bytes,Subflow Bwd Packets,"
    "Subflow Bwd Bytes,FWD Init Win Bytes,Bwd Init Win Bytes,Fwd Act Data Pkts,Fwd Seg Size Min,"
    "Active Mean,Active Std,Active Max,Active Min,Idle Mean,Idle Std,Idle Max,Idle Min"
)
# CICFlowMeter-V4's abbreviations (CSE-CIC-IDS2018 as published, CICFlowMeter 4.0 releases).
_ABBREVIATED_FEATURES = (
    "Flow Duration,Tot Fwd Pkts,Tot Bwd Pkts,TotLen Fwd Pkts,TotLen Bwd Pkts,Fwd Pkt Len Max,"
    "Fwd Pkt Len Min,Fwd Pkt Len Mean,Fwd Pkt Len Std,Bwd Pkt Len Max,Bwd Pkt Len Min,"
    "Bwd Pkt Len Mean,Bwd Pkt Len Std,Flow Byts/s,Flow Pkts/s,Flow IAT Mean,Flow IAT Std,"
    "Flow IAT Max,Flow IAT Min,Fwd IAT Tot,Fwd IAT Mean,Fwd IAT Std,Fwd IAT Max,Fwd IAT Min,"
    "Bwd IAT Tot,Bwd IAT Mean,Bwd IAT Std,Bwd IAT Max,Bwd IAT Min,Fwd PSH Flags,Bwd PSH Flags,"
    "Fwd URG Flags,Bwd URG Flags,Fwd Header Len,Bwd Header Len,Fwd Pkts/s,Bwd Pkts/s,"
    "Pkt Len Min,Pkt Len Max,Pkt Len Mean,Pkt Len Std,Pkt Len Var,FIN Flag Cnt,SYN Flag Cnt,"
    "RST Flag Cnt,PSH Flag Cnt,ACK Flag Cnt,URG Flag Cnt,CWE Flag Count,ECE Flag Cnt,"
    "Down/Up Ratio,Pkt Size Avg,Fwd Seg Size Avg,Bwd Seg Size Avg,Fwd Byts/b Avg,Fwd Pkts/b Avg,"
    "Fwd Blk Rate Avg,Bwd Byts/b Avg,Bwd Pkts/b Avg,Bwd Blk Rate Avg,Subflow Fwd Pkts,"
    "Subflow Fwd Byts,Subflow Bwd Pkts,Subflow Bwd Byts,Init Fwd Win Byts,Init Bwd Win Byts,"
    "Fwd Act Data Pkts,Fwd Seg Size Min,Active Mean,Active Std,Active Max,Active Min,Idle Mean,"
    "Idle Std,Idle Max,Idle Min"
)
_PYTHON_FEATURES = (
    "flow_duration,flow_byts_s,flow_pkts_s,fwd_pkts_s,bwd_pkts_s,tot_fwd_pkts,tot_bwd_pkts,"
    "totlen_fwd_pkts,totlen_bwd_pkts,fwd_pkt_len_max,fwd_pkt_len_min,fwd_pkt_len_mean,"
    "fwd_pkt_len_std,bwd_pkt_len_max,bwd_pkt_len_min,bwd_pkt_len_mean,bwd_pkt_len_std,"
    "pkt_len_max,pkt_len_min,pkt_len_mean,pkt_len_std,pkt_len_var,fwd_header_len,bwd_header_len,"
    "fwd_seg_size_min,fwd_act_data_pkts,flow_iat_mean,flow_iat_max,flow_iat_min,flow_iat_std,"
    "fwd_iat_tot,fwd_iat_max,fwd_iat_min,fwd_iat_mean,fwd_iat_std,bwd_iat_tot,bwd_iat_max,"
    "bwd_iat_min,bwd_iat_mean,bwd_iat_std,fwd_psh_flags,bwd_psh_flags,fwd_urg_flags,"
    "bwd_urg_flags,fin_flag_cnt,syn_flag_cnt,rst_flag_cnt,psh_flag_cnt,ack_flag_cnt,urg_flag_cnt,"
    "ece_flag_cnt,down_up_ratio,pkt_size_avg,init_fwd_win_byts,init_bwd_win_byts,active_max,"
    "active_min,active_mean,active_std,idle_max,idle_min,idle_mean,idle_std,fwd_byts_b_avg,"
    "fwd_pkts_b_avg,bwd_byts_b_avg,bwd_pkts_b_avg,fwd_blk_rate_avg,bwd_blk_rate_avg,"
    "fwd_seg_size_avg,bwd_seg_size_avg,cwr_flag_count,subflow_fwd_pkts,subflow_bwd_pkts,"
    "subflow_fwd_byts,subflow_bwd_byts"
)


@dataclass(frozen=True)
class Layout:
    """One CSV layout: its name, who writes it, and the header line it writes."""

    name: str
    writer: str
    header: str

    @property
    def columns(self) -> tuple[str, ...]:
        return tuple(self.header.split(","))


def _java3(features: str) -> str:
    """Java CICFlowMeter 3.x/4.x's own output: CICIDS2017 names with Src/Dst, no duplicate."""
    renamed = (
        features.replace("Fwd Header Length.1,", "")
        .replace("Init_Win_bytes_forward", "Init Win Bytes Fwd")
        .replace("Init_Win_bytes_backward", "Init Win Bytes Bwd")
        .replace("act_data_pkt_fwd", "Act Data Pkt Fwd")
        .replace("min_seg_size_forward", "Min Seg Size Fwd")
    )
    return "Flow ID,Src IP,Src Port,Dst IP,Dst Port,Protocol,Timestamp," + renamed + ",Label"


LAYOUTS: tuple[Layout, ...] = (
    Layout(
        "cicids2017-trafficlabelling",
        "CICIDS2017 as published (TrafficLabelling/, 85 columns; Java CICFlowMeter-V3)",
        "Flow ID, Source IP, Source Port, Destination IP, Destination Port, Protocol, Timestamp,"
        + _CICIDS2017_FEATURES
        + ", Label",
    ),
    Layout(
        "cicids2017-machinelearningcve",
        "CICIDS2017 as published (MachineLearningCVE/, 79 columns: no ids, IPs or timestamp)",
        " Destination Port," + _CICIDS2017_FEATURES + ", Label",
    ),
    Layout(
        "java-cicflowmeter",
        "Java CICFlowMeter 3.x/4.x, online (*_online.csv) and offline (*_Flow.csv), 84 columns",
        _java3(_CICIDS2017_FEATURES.replace(", ", ",").strip()),
    ),
    Layout(
        "cic-ddos2019",
        "CIC-DDoS2019 (88 columns: Unnamed: 0, SimillarHTTP, Inbound; CICFlowMeter-V3)",
        "Unnamed: 0,Flow ID, Source IP, Source Port, Destination IP, Destination Port, Protocol,"
        " Timestamp," + _CICIDS2017_FEATURES + ", SimillarHTTP, Inbound, Label",
    ),
    Layout(
        "corrected-cicflowmeter",
        "the corrected re-extractions of CICIDS2017 and CSE-CIC-IDS2018 (Engelen et al., "
        "Liu et al.; 91 columns)",
        "id,Flow ID,Src IP,Src Port,Dst IP,Dst Port,Protocol,Timestamp,"
        + _LONG_FEATURES.format(rst="Fwd RST Flags,Bwd RST Flags,", cwr="CWR")
        + ",ICMP Code,ICMP Type,Total TCP Flow Time,Label,Attempted Category",
    ),
    Layout(
        "cicflowmeter-v4-long",
        "CICFlowMeter-4 long names (its GitHub master; CIC-Darknet2020 with two Label columns)",
        "Flow ID,Src IP,Src Port,Dst IP,Dst Port,Protocol,Timestamp,"
        + _LONG_FEATURES.format(rst="", cwr="CWE")
        + ",Label,Label",
    ),
    Layout(
        "cicflowmeter-v4-abbreviated",
        "CICFlowMeter-V4 abbreviations (CSE-CIC-IDS2018 as published; with or without "
        "Flow ID/IPs/Timestamp)",
        "Flow ID,Src IP,Src Port,Dst IP,Dst Port,Protocol,Timestamp,"
        + _ABBREVIATED_FEATURES
        + ",Label",
    ),
    Layout(
        PYTHON_CICFLOWMETER,
        "the Python cicflowmeter package (PyPI; snake_case, times in seconds, no label)",
        "src_ip,dst_ip,src_port,dst_port,protocol,timestamp," + _PYTHON_FEATURES,
    ),
)
LAYOUT_NAMES: tuple[str, ...] = tuple(layout.name for layout in LAYOUTS)


def _spelling(column: str) -> str:
    return column.strip().lower()


_LAYOUT_SPELLINGS = {layout.name: {_spelling(c) for c in layout.columns} for layout in LAYOUTS}


def _mostly_snake_case(columns: Sequence[str]) -> bool:
    named = [c.strip() for c in columns if c.strip()]
    snake = [c for c in named if c == c.lower() and " " not in c and "_" in c]
    return len(named) > 0 and 2 * len(snake) > len(named)


def similarity(columns: Iterable[str], layout: str) -> float:
    """Jaccard similarity of a header's exact spellings with ``layout``'s (0..1)."""
    spellings = {_spelling(c) for c in columns}
    reference = _LAYOUT_SPELLINGS[layout]
    union = spellings | reference
    return len(spellings & reference) / len(union) if union else 0.0


def nearest_layout(columns: Sequence[str]) -> tuple[str, float]:
    """The layout a header resembles most, and how much (Jaccard of exact spellings)."""
    if _mostly_snake_case(columns):
        return PYTHON_CICFLOWMETER, similarity(columns, PYTHON_CICFLOWMETER)
    scored = [
        (similarity(columns, layout.name), -index, layout.name)
        for index, layout in enumerate(LAYOUTS)
        if layout.name != PYTHON_CICFLOWMETER
    ]
    best, _, name = max(scored)
    return name, best


# Durations, inter-arrival and active/idle times: Java CICFlowMeter writes microseconds, the
# Python package seconds. Canonical values are microseconds (what the model was trained on).
_TIME_SCALE = {PYTHON_CICFLOWMETER: 1e6}


# Active and idle periods lie within their flow, but CICFlowMeter-4 (CIC-Darknet2020's files)
# wrote idle statistics as absolute times (microseconds since the epoch, ~1.4e15), which the
# worker refuses as out of range. A group whose mean, max or min exceeds the flow's duration by
# more than PERIOD_SLACK (the original CICIDS2017 CSVs round periods to 3 significant digits,
# so a single idle period reads up to 0.5% longer than its flow) is read as 0 (no period
# measured), as the Python cicflowmeter writes it. Applied after the time scale.
PERIOD_GROUPS = tuple(
    tuple(f"{group}_{statistic}" for statistic in ("mean", "max", "min", "std"))
    for group in ("active", "idle")
)
PERIOD_SLACK = 1.01


def repair_periods(features: MutableMapping[str, Any]) -> int:
    """Zero, in place, the active/idle groups that cannot be periods of their flow.

    ``features``: canonical name -> a column (array) or one value; returns how many flows had
    a group zeroed. One rule for every reader: the loader (whole columns), the relay (a row).
    """
    duration = np.asarray(features["flow_duration"], dtype=np.float64)
    repaired = np.zeros(duration.shape, dtype=bool)
    for group in PERIOD_GROUPS:
        beyond = np.zeros(duration.shape, dtype=bool)
        for name in group[:3]:
            beyond |= np.asarray(features[name], dtype=np.float64) > duration * PERIOD_SLACK
        if not beyond.any():
            continue
        repaired |= beyond
        for name in group:
            value = np.where(beyond, 0.0, features[name])
            dtype = np.asarray(features[name]).dtype
            features[name] = value.astype(dtype) if value.ndim else float(value)
    return int(repaired.sum())


@dataclass(frozen=True)
class HeaderPlan:
    """What one CSV header holds, in canonical terms.

    ``positions``: canonical name -> the position of its first column (later repeats, such as
    the 85-column files' second ``Fwd Header Length``, are ignored); ``label_positions``: every
    ``Label`` column (CIC-Darknet2020 has two); ``unmapped``: columns no alias names.
    """

    columns: tuple[str, ...]
    layout: str
    resemblance: float
    positions: dict[str, int]
    label_positions: tuple[int, ...]
    unmapped: tuple[str, ...]

    @property
    def time_scale(self) -> float:
        """Factor that turns this layout's durations into canonical microseconds."""
        return _TIME_SCALE.get(self.layout, 1.0)

    @property
    def missing_features(self) -> tuple[str, ...]:
        return tuple(name for name in schema.FEATURE_NAMES if name not in self.positions)

    @property
    def has_label(self) -> bool:
        return bool(self.label_positions)

    def require_features(self, source: object) -> None:
        """Raise :class:`SchemaError` naming every missing feature and the nearest layout."""
        missing = self.missing_features
        if not missing:
            return
        shown = ", ".join(missing[:12]) + (
            f", ... ({len(missing)} in all)" if len(missing) > 12 else ""
        )
        unmapped = (
            f"; columns no alias names: {', '.join(repr(c) for c in self.unmapped[:8])}"
            if self.unmapped
            else ""
        )
        raise SchemaError(
            f"{source}: lacks {len(missing)} of the {len(schema.FEATURE_NAMES)} required feature "
            f"columns: {shown}. Nearest known layout: {self.layout!r} "
            f"({self.resemblance:.0%} of its column names){unmapped}"
        )


def plan_header(columns: Sequence[str]) -> HeaderPlan:
    """Read a CSV header: canonical positions, label columns, layout, unmapped names."""
    columns = tuple(columns)
    positions: dict[str, int] = {}
    labels: list[int] = []
    unmapped: list[str] = []
    for position, column in enumerate(columns):
        name = schema.canonical_name(column)
        if name is None:
            if column.strip():
                unmapped.append(column)
            continue
        if name == "label":
            labels.append(position)
        positions.setdefault(name, position)
    layout, resemblance = nearest_layout(columns)
    return HeaderPlan(columns, layout, resemblance, positions, tuple(labels), tuple(unmapped))
