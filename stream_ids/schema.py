"""The canonical flow schema: one snake_case name per CICFlowMeter column, and its aliases.

Every layout stream-ids reads maps onto these names:

* the original CICIDS2017 *TrafficLabelling* CSVs (85 columns, `` Source IP``, leading spaces);
* the original *MachineLearningCVE* CSVs (79 columns: no flow id, IPs, source port, protocol,
  timestamp);
* the corrected CICIDS2017 of Engelen et al. (91 columns, ``Src IP``, ``Attempted Category``);
* the corrected re-extraction of CSE-CIC-IDS2018 (the same 91 columns);
* Java CICFlowMeter 3.x / 4.x output, online and offline (``Src IP``, ``Init Win Bytes Fwd``);
* CICFlowMeter-V4 as in CSE-CIC-IDS2018 (``Dst Port``, ``Tot Fwd Pkts``, ``Init Fwd Win Byts``);
* CIC-DDoS2019 (88 columns: ``Unnamed: 0``, `` SimillarHTTP``, `` Inbound``);
* CIC-Darknet2020 (long names, two ``Label`` columns);
* the snake_case headers of the Python ``cicflowmeter`` package (``tot_fwd_pkts``).

:mod:`stream_ids.layouts` names these layouts and decides, per file, which one a header is.

Headers are matched after :func:`normalize_header` (case, separators, camel case, word order and
known abbreviations removed), so ``Tot Fwd Pkts``, ``tot_fwd_pkts``, ``Total Fwd Packets`` and
`` Total Fwd Packet`` are one key. The tables below list, per canonical name, the spellings seen
in those layouts (each also covers its re-orderings and abbreviations). This module is the
single mapping table: the loader, the producers, the records and the transform all import it.
"""

from __future__ import annotations

import re
from collections.abc import Iterable

_CAMEL_BOUNDARY = re.compile(r"(?<=[a-z])(?=[A-Z])")
_TOKEN = re.compile(r"[a-z0-9]+")

# Every abbreviation CICFlowMeter versions have written, to one spelling. A header's key is the
# *set* of its expanded words, so word order does not matter either: ``Init_Win_bytes_forward``,
# ``FWD Init Win Bytes``, ``Init Fwd Win Byts`` and ``Init Win Bytes Fwd`` are one key.
ABBREVIATIONS: dict[str, tuple[str, ...]] = {
    "tot": ("total",),
    "totlen": ("total", "length"),
    "len": ("length",),
    "pkt": ("packet",),
    "pkts": ("packet",),
    "packets": ("packet",),
    "byts": ("byte",),
    "bytes": ("byte",),
    "b": ("bulk",),  # ``Fwd Byts/b Avg``
    "blk": ("bulk",),
    "forward": ("fwd",),
    "backward": ("bwd",),
    "source": ("src",),
    "destination": ("dst",),
    "window": ("win",),
    "cnt": ("count",),
    "average": ("avg",),
    "seg": ("segment",),
    "variance": ("var",),
    "flags": ("flag",),
    "initial": ("init",),
    "minimum": ("min",),
    "maximum": ("max",),
    # The original CICFlowMeter misspelt CWR as CWE.
    "cwe": ("cwr",),
}
# Filler words some spellings carry and others do not (``Total Length of Fwd Packets``).
_FILLER = frozenset({"of"})


def header_words(header: str) -> tuple[str, ...]:
    """The expanded words of a header, in order: ``TotLen Fwd Pkts`` -> total length fwd packet."""
    text = _CAMEL_BOUNDARY.sub(" ", header.strip()).lower()
    words: list[str] = []
    for token in _TOKEN.findall(text):
        if token in _FILLER:
            continue
        words.extend(ABBREVIATIONS.get(token, (token,)))
    return tuple(words)


def normalize_header(header: str) -> str:
    """The lookup key of a CSV header: its expanded words, sorted and de-duplicated.

    Case, spaces, ``_``, ``/``, camel case, word order and the abbreviations above do not
    matter: `` Tot Fwd Pkts``, ``tot_fwd_pkts`` and ``Total Fwd Packets`` share one key.
    """
    return " ".join(sorted(set(header_words(header))))


# Identifiers and ground truth: carried along, never model inputs.
IDENTIFIER_ALIASES: dict[str, tuple[str, ...]] = {
    "flow_id": ("Flow ID",),
    "src_ip": ("Source IP", "Src IP"),
    "src_port": ("Source Port", "Src Port"),
    "dst_ip": ("Destination IP", "Dst IP"),
    "dst_port": ("Destination Port", "Dst Port"),
    "protocol": ("Protocol",),
    "timestamp": ("Timestamp",),
}
LABEL_ALIASES: dict[str, tuple[str, ...]] = {
    "label": ("Label",),
    "attempted_category": ("Attempted Category",),
}

# The CICFlowMeter features common to every layout, in the model's fixed order.
# Destination port is an identifier (above); protocol is handled by the transform as a
# one-hot category, not as a number.
FEATURE_ALIASES: dict[str, tuple[str, ...]] = {
    "flow_duration": ("Flow Duration",),
    "total_fwd_packets": ("Total Fwd Packets", "Total Fwd Packet", "Tot Fwd Pkts"),
    "total_bwd_packets": ("Total Backward Packets", "Total Bwd packets", "Tot Bwd Pkts"),
    "total_length_fwd_packets": (
        "Total Length of Fwd Packets",
        "Total Length of Fwd Packet",
        "TotLen Fwd Pkts",
    ),
    "total_length_bwd_packets": (
        "Total Length of Bwd Packets",
        "Total Length of Bwd Packet",
        "TotLen Bwd Pkts",
    ),
    "fwd_packet_length_max": ("Fwd Packet Length Max", "Fwd Pkt Len Max"),
    "fwd_packet_length_min": ("Fwd Packet Length Min", "Fwd Pkt Len Min"),
    "fwd_packet_length_mean": ("Fwd Packet Length Mean", "Fwd Pkt Len Mean"),
    "fwd_packet_length_std": ("Fwd Packet Length Std", "Fwd Pkt Len Std"),
    "bwd_packet_length_max": ("Bwd Packet Length Max", "Bwd Pkt Len Max"),
    "bwd_packet_length_min": ("Bwd Packet Length Min", "Bwd Pkt Len Min"),
    "bwd_packet_length_mean": ("Bwd Packet Length Mean", "Bwd Pkt Len Mean"),
    "bwd_packet_length_std": ("Bwd Packet Length Std", "Bwd Pkt Len Std"),
    "flow_bytes_per_s": ("Flow Bytes/s", "Flow Byts/s"),
    "flow_packets_per_s": ("Flow Packets/s", "Flow Pkts/s"),
    "flow_iat_mean": ("Flow IAT Mean",),
    "flow_iat_std": ("Flow IAT Std",),
    "flow_iat_max": ("Flow IAT Max",),
    "flow_iat_min": ("Flow IAT Min",),
    "fwd_iat_total": ("Fwd IAT Total", "Fwd IAT Tot"),
    "fwd_iat_mean": ("Fwd IAT Mean",),
    "fwd_iat_std": ("Fwd IAT Std",),
    "fwd_iat_max": ("Fwd IAT Max",),
    "fwd_iat_min": ("Fwd IAT Min",),
    "bwd_iat_total": ("Bwd IAT Total", "Bwd IAT Tot"),
    "bwd_iat_mean": ("Bwd IAT Mean",),
    "bwd_iat_std": ("Bwd IAT Std",),
    "bwd_iat_max": ("Bwd IAT Max",),
    "bwd_iat_min": ("Bwd IAT Min",),
    "fwd_psh_flags": ("Fwd PSH Flags",),
    "bwd_psh_flags": ("Bwd PSH Flags",),
    "fwd_urg_flags": ("Fwd URG Flags",),
    "bwd_urg_flags": ("Bwd URG Flags",),
    "fwd_header_length": ("Fwd Header Length", "Fwd Header Len"),
    "bwd_header_length": ("Bwd Header Length", "Bwd Header Len"),
    "fwd_packets_per_s": ("Fwd Packets/s", "Fwd Pkts/s"),
    "bwd_packets_per_s": ("Bwd Packets/s", "Bwd Pkts/s"),
    "packet_length_min": ("Min Packet Length", "Packet Length Min", "Pkt Len Min"),
    "packet_length_max": ("Max Packet Length", "Packet Length Max", "Pkt Len Max"),
    "packet_length_mean": ("Packet Length Mean", "Pkt Len Mean"),
    "packet_length_std": ("Packet Length Std", "Pkt Len Std"),
    "packet_length_variance": ("Packet Length Variance", "Pkt Len Var"),
    "fin_flag_count": ("FIN Flag Count", "FIN Flag Cnt"),
    "syn_flag_count": ("SYN Flag Count", "SYN Flag Cnt"),
    "rst_flag_count": ("RST Flag Count", "RST Flag Cnt"),
    "psh_flag_count": ("PSH Flag Count", "PSH Flag Cnt"),
    "ack_flag_count": ("ACK Flag Count", "ACK Flag Cnt"),
    "urg_flag_count": ("URG Flag Count", "URG Flag Cnt"),
    # The original CICFlowMeter misspelt CWR as CWE.
    "cwr_flag_count": ("CWE Flag Count", "CWR Flag Count", "CWR Flag Cnt", "CWE Flag Cnt"),
    "ece_flag_count": ("ECE Flag Count", "ECE Flag Cnt"),
    "down_up_ratio": ("Down/Up Ratio",),
    "average_packet_size": ("Average Packet Size", "Pkt Size Avg"),
    "fwd_segment_size_avg": ("Avg Fwd Segment Size", "Fwd Segment Size Avg", "Fwd Seg Size Avg"),
    "bwd_segment_size_avg": ("Avg Bwd Segment Size", "Bwd Segment Size Avg", "Bwd Seg Size Avg"),
    "fwd_bytes_per_bulk_avg": ("Fwd Avg Bytes/Bulk", "Fwd Bytes/Bulk Avg", "Fwd Byts/b Avg"),
    "fwd_packets_per_bulk_avg": ("Fwd Avg Packets/Bulk", "Fwd Packet/Bulk Avg", "Fwd Pkts/b Avg"),
    "fwd_bulk_rate_avg": ("Fwd Avg Bulk Rate", "Fwd Bulk Rate Avg", "Fwd Blk Rate Avg"),
    "bwd_bytes_per_bulk_avg": ("Bwd Avg Bytes/Bulk", "Bwd Bytes/Bulk Avg", "Bwd Byts/b Avg"),
    "bwd_packets_per_bulk_avg": ("Bwd Avg Packets/Bulk", "Bwd Packet/Bulk Avg", "Bwd Pkts/b Avg"),
    "bwd_bulk_rate_avg": ("Bwd Avg Bulk Rate", "Bwd Bulk Rate Avg", "Bwd Blk Rate Avg"),
    "subflow_fwd_packets": ("Subflow Fwd Packets", "Subflow Fwd Pkts"),
    "subflow_fwd_bytes": ("Subflow Fwd Bytes", "Subflow Fwd Byts"),
    "subflow_bwd_packets": ("Subflow Bwd Packets", "Subflow Bwd Pkts"),
    "subflow_bwd_bytes": ("Subflow Bwd Bytes", "Subflow Bwd Byts"),
    "init_win_bytes_fwd": (
        "Init_Win_bytes_forward",
        "Init Win Bytes Fwd",
        "FWD Init Win Bytes",
        "Init Fwd Win Byts",
    ),
    "init_win_bytes_bwd": (
        "Init_Win_bytes_backward",
        "Init Win Bytes Bwd",
        "Bwd Init Win Bytes",
        "Init Bwd Win Byts",
    ),
    "fwd_act_data_packets": ("act_data_pkt_fwd", "Act Data Pkt Fwd", "Fwd Act Data Pkts"),
    "fwd_seg_size_min": ("min_seg_size_forward", "Min Seg Size Fwd", "Fwd Seg Size Min"),
    "active_mean": ("Active Mean",),
    "active_std": ("Active Std",),
    "active_max": ("Active Max",),
    "active_min": ("Active Min",),
    "idle_mean": ("Idle Mean",),
    "idle_std": ("Idle Std",),
    "idle_max": ("Idle Max",),
    "idle_min": ("Idle Min",),
}

# Extra columns some layouts carry that are deliberately *not* model inputs (not common to all).
EXTRA_ALIASES: dict[str, tuple[str, ...]] = {
    "row_id": ("id",),
    "fwd_rst_flags": ("Fwd RST Flags",),
    "bwd_rst_flags": ("Bwd RST Flags",),
    "icmp_code": ("ICMP Code",),
    "icmp_type": ("ICMP Type",),
    "total_tcp_flow_time": ("Total TCP Flow Time",),
    # The TrafficLabelling files repeat ``Fwd Header Length``; pandas/csv see it as ``.1``.
    "fwd_header_length_duplicate": ("Fwd Header Length.1",),
    # CIC-DDoS2019: a pandas index column written into the CSV, and two columns of its own.
    "pandas_index": ("Unnamed: 0",),
    "similar_http": ("SimillarHTTP",),
    "inbound": ("Inbound",),
}

FEATURE_NAMES: tuple[str, ...] = tuple(FEATURE_ALIASES)
IDENTIFIER_NAMES: tuple[str, ...] = tuple(IDENTIFIER_ALIASES)
# Rate features: CICFlowMeter divides by the flow duration and writes Infinity/NaN for zero
# durations. Every other feature is a count, size or time and must be finite.
RATE_FEATURES: tuple[str, ...] = (
    "flow_bytes_per_s",
    "flow_packets_per_s",
    "fwd_packets_per_s",
    "bwd_packets_per_s",
)

# Durations and inter-arrival times. Java CICFlowMeter (and so CICIDS2017) writes them in
# microseconds; the Python ``cicflowmeter`` package writes seconds, so its rows are scaled by 1e6.
TIME_FEATURES: tuple[str, ...] = tuple(
    name
    for name in FEATURE_ALIASES
    if name == "flow_duration" or "_iat_" in name or name.startswith(("active_", "idle_"))
)

# The python ``cicflowmeter`` package (PyPI) writes its own snake_case names; where they do not
# normalise to one of the aliases above, they are listed here.
PYTHON_CICFLOWMETER_ALIASES: dict[str, tuple[str, ...]] = {
    "flow_bytes_per_s": ("flow_byts_s",),
    "flow_packets_per_s": ("flow_pkts_s",),
    "fwd_packets_per_s": ("fwd_pkts_s",),
    "bwd_packets_per_s": ("bwd_pkts_s",),
    "fwd_header_length": ("fwd_header_len",),
    "bwd_header_length": ("bwd_header_len",),
    "cwr_flag_count": ("cwr_flag_count", "cwe_flag_count"),
    "packet_length_variance": ("pkt_len_var",),
    "average_packet_size": ("pkt_size_avg",),
    "fwd_bytes_per_bulk_avg": ("fwd_byts_b_avg",),
    "fwd_packets_per_bulk_avg": ("fwd_pkts_b_avg",),
    "fwd_bulk_rate_avg": ("fwd_blk_rate_avg",),
    "bwd_bytes_per_bulk_avg": ("bwd_byts_b_avg",),
    "bwd_packets_per_bulk_avg": ("bwd_pkts_b_avg",),
    "bwd_bulk_rate_avg": ("bwd_blk_rate_avg",),
    "init_win_bytes_fwd": ("init_fwd_win_byts",),
    "init_win_bytes_bwd": ("init_bwd_win_byts",),
}


def _build_lookup() -> dict[str, str]:
    lookup: dict[str, str] = {}
    tables: Iterable[dict[str, tuple[str, ...]]] = (
        IDENTIFIER_ALIASES,
        LABEL_ALIASES,
        FEATURE_ALIASES,
        EXTRA_ALIASES,
        PYTHON_CICFLOWMETER_ALIASES,
    )
    for table in tables:
        for canonical, aliases in table.items():
            for alias in (canonical, *aliases):
                key = normalize_header(alias)
                previous = lookup.setdefault(key, canonical)
                if previous != canonical:  # pragma: no cover - guarded by a unit test
                    raise ValueError(f"alias {alias!r} maps to both {previous} and {canonical}")
    return lookup


HEADER_LOOKUP: dict[str, str] = _build_lookup()


def canonical_name(header: str) -> str | None:
    """The canonical name of a CSV header in any known layout, or ``None`` if unknown."""
    return HEADER_LOOKUP.get(normalize_header(header))


# Label values that mean "not an attack". CIC-Darknet2020's traffic classes say how traffic was
# carried (over Tor or a VPN, or not), not that it is malicious: every flow of it is benign.
BENIGN_LABELS = frozenset({"benign", "normal", "nontor", "nonvpn", "tor", "vpn"})
# Placeholders extractors write when nobody labelled the flows (Java CICFlowMeter's
# ``NeedManualLabel``): such a flow is unlabelled, neither benign nor attack.
PLACEHOLDER_LABELS = frozenset(
    {"", "nan", "none", "needmanuallabel", "nolabel", "unlabeled", "unlabelled", "unknown"}
)
ATTACK, BENIGN, UNLABELLED = 1, 0, -1


def _label_key(label: str) -> str:
    return "".join(ch for ch in label.lower() if ch.isalnum())


def label_class(label: str | None) -> int:
    """1 for an attack label, 0 for a benign one, -1 for no label or a placeholder.

    Case, spaces and punctuation are ignored (``BENIGN``, `` Benign``, ``Non-Tor``); any other
    label names an attack (``DDoS``, ``FTP-BruteForce``, ``Web Attack \x96 XSS``).
    """
    if label is None:
        return UNLABELLED
    key = _label_key(label)
    if key in PLACEHOLDER_LABELS:
        return UNLABELLED
    return BENIGN if key in BENIGN_LABELS else ATTACK


def is_benign_label(label: str) -> bool:
    """A benign label (see :func:`label_class`); placeholders are not benign either."""
    return label_class(label) == BENIGN
