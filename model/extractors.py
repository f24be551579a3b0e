"""What other extractors would have written for a Java CICFlowMeter flow (augmentation).

:func:`as_python_cicflowmeter`: the Python ``cicflowmeter`` package's definitions (below);
:func:`as_java_versions`: the differences between Java CICFlowMeter releases (applied to a
random half of the rows each, seeded).

Extractor augmentation (issue #16): training rows copied as another extractor writes them, in
both classes, so that a model cannot learn "this extractor's look means benign" (the shortcut
docs/model-v2.md measured when only benign traffic came through the Python package) and instead
learns to ignore the differences. The differences below are read from the Python package's
source (``cicflowmeter`` 0.5.0: ``features/packet_length.py``, ``features/flow_bytes.py``,
``flow.py``) against the Java CICFlowMeter's definitions:

* packet lengths are whole frames (``len(packet)``: Ethernet + IP + transport headers +
  payload) where Java counts transport payload bytes;
* header lengths are IP header bytes (``ihl * 4`` per packet) where Java counts transport
  header bytes; the minimum forward segment size likewise (20 for IPv4);
* the four subflow features repeat the totals (one subflow per flow);
* active and idle times are always 0, and the minimum flow and forward inter-arrival times are
  always 0 (the first packet's zero gap is counted).

Rates follow from the lengths (bytes per second scale with the bytes). The transport header
of a Java row is its mean header bytes per packet (``fwd_header_length / total_fwd_packets``),
8 for UDP. Pure and vectorised: frame in, new frame out.

:func:`rescale_time`: the same flows on a network with another pace (time features scaled,
per-second rates inversely), for the augmented copies' time-scale jitter (``--augment-timescale``):
the CICIDS2017 attacks all ran inside one LAN, so absolute times say "this network" as much as
"this attack" (docs/model-v2.md section 7).
"""

from __future__ import annotations

from collections.abc import Callable

import numpy as np
import pandas as pd

from model.features import UNSTABLE_GROUPS
from stream_ids import schema
from stream_ids.layouts import PYTHON_CICFLOWMETER

ETHERNET_HEADER = 14.0
IPV4_HEADER = 20.0
UDP_HEADER = 8.0
TCP_HEADER = 20.0  # fallback where a row has no forward packet to average over


def _transport_header(frame: pd.DataFrame) -> pd.Series:
    """Mean transport header bytes per packet of each Java row (UDP 8; other protocols 0)."""
    packets = frame["total_fwd_packets"] + frame["total_bwd_packets"]
    headers = frame["fwd_header_length"] + frame["bwd_header_length"]
    tcp = (headers / packets.where(packets > 0)).clip(TCP_HEADER, 60.0).fillna(TCP_HEADER)
    protocol = frame["protocol"]
    return pd.Series(
        np.select([protocol == 6, protocol == 17], [tcp, UDP_HEADER], 0.0), index=frame.index
    )


def as_python_cicflowmeter(frame: pd.DataFrame) -> pd.DataFrame:
    """``frame`` (canonical Java CICFlowMeter flows) as the Python ``cicflowmeter`` writes them."""
    out = frame.copy()
    forward, backward = frame["total_fwd_packets"], frame["total_bwd_packets"]
    packets = forward + backward
    transport = _transport_header(frame)
    overhead = ETHERNET_HEADER + IPV4_HEADER + transport  # per packet, frame minus payload
    for direction, count in (("fwd", forward), ("bwd", backward)):
        present = count > 0
        for statistic in ("max", "min", "mean"):
            name = f"{direction}_packet_length_{statistic}"
            out[name] = (frame[name] + overhead).where(present, 0.0)
        out[f"{direction}_segment_size_avg"] = out[f"{direction}_packet_length_mean"]
        out[f"total_length_{direction}_packets"] = (
            frame[f"total_length_{direction}_packets"] + count * overhead
        )
        out[f"{direction}_header_length"] = count * IPV4_HEADER
    old_bytes = frame["total_length_fwd_packets"] + frame["total_length_bwd_packets"]
    new_bytes = out["total_length_fwd_packets"] + out["total_length_bwd_packets"]
    out["packet_length_max"] = np.maximum(
        out["fwd_packet_length_max"], out["bwd_packet_length_max"]
    )
    out["packet_length_min"] = np.minimum(
        out["fwd_packet_length_min"].where(forward > 0, np.inf),
        out["bwd_packet_length_min"].where(backward > 0, np.inf),
    ).replace(np.inf, 0.0)
    out["packet_length_mean"] = (new_bytes / packets.where(packets > 0)).fillna(0.0)
    out["average_packet_size"] = out["packet_length_mean"]
    # Bytes per second scale with the bytes; a zero-byte Java flow gets the frames' bytes over
    # the same duration (Infinity stays Infinity: the transform owns that rule).
    duration_s = frame["flow_duration"] / 1e6
    scaled = frame["flow_bytes_per_s"] * (new_bytes / old_bytes.where(old_bytes > 0))
    out["flow_bytes_per_s"] = scaled.fillna(new_bytes / duration_s.where(duration_s > 0)).fillna(
        frame["flow_bytes_per_s"]
    )
    out["fwd_seg_size_min"] = pd.Series(IPV4_HEADER, index=frame.index).where(forward > 0, 0.0)
    out["subflow_fwd_packets"] = forward
    out["subflow_bwd_packets"] = backward
    out["subflow_fwd_bytes"] = out["total_length_fwd_packets"]
    out["subflow_bwd_bytes"] = out["total_length_bwd_packets"]
    for name in ("active_mean", "active_std", "active_max", "active_min",
                 "idle_mean", "idle_std", "idle_max", "idle_min",
                 "flow_iat_min", "fwd_iat_min"):
        out[name] = 0.0
    return out


def as_java_versions(frame: pd.DataFrame, seed: int = 0) -> pd.DataFrame:
    """A copy of ``frame`` with the known CICFlowMeter version differences applied at random.

    Per row, each difference with probability 1/2: PSH/URG direction flags zeroed (counted on
    the first packet only); bulk features zeroed; subflow features reduced to 0/1 copies;
    backward initial window set to -1 (absent) or 0; one packet more or less in each direction.
    """
    rng = np.random.default_rng(seed)
    out = frame.copy()
    n = len(out)

    def some() -> np.ndarray:
        return rng.random(n) < 0.5

    rows = some()
    out.loc[rows, list(UNSTABLE_GROUPS["psh_urg_direction"])] = 0.0
    rows = some()
    out.loc[rows, list(UNSTABLE_GROUPS["bulk"])] = 0.0
    rows = some()
    for name in ("subflow_fwd_packets", "subflow_bwd_packets"):
        out.loc[rows, name] = (out.loc[rows, name] > 0).astype(float)
    rows = some()
    out.loc[rows, "init_win_bytes_bwd"] = rng.choice([-1.0, 0.0], size=int(rows.sum()))
    for name in ("total_fwd_packets", "total_bwd_packets"):
        rows = some()
        shift = rng.choice([-1.0, 1.0], size=int(rows.sum()))
        out.loc[rows, name] = np.maximum(out.loc[rows, name].to_numpy() + shift, 0.0)
    return out


# Per-second rates that the time scale divides (the bulk rates are bytes per second of bulk).
PER_SECOND_FEATURES: tuple[str, ...] = (
    *schema.RATE_FEATURES,
    "fwd_bulk_rate_avg",
    "bwd_bulk_rate_avg",
)


def rescale_time(frame: pd.DataFrame, factor: np.ndarray) -> pd.DataFrame:
    """A copy of ``frame`` as its flows would look ``factor`` times slower (per row): durations,
    inter-arrival, active and idle times times the factor, per-second rates divided by it.

    The same exchange on a network with another round-trip time, or a host with another pace;
    counts, sizes and flags do not change. Infinity and NaN stay what they are. Not every copy
    is a flow an extractor would write: Java CICFlowMeter ends a flow at 120 s and counts idle
    time only past 5 s, and a factor does not move those cut-offs (a 100 s flow ten times
    slower lasts 1,000 s). The model sees the pace vary, not the extractor's rules.
    """
    scale = np.asarray(factor, dtype=np.float64)
    if scale.shape != (len(frame),) or not np.all(np.isfinite(scale) & (scale > 0)):
        raise ValueError("one finite positive time factor per row")
    out = frame.copy()
    for names, power in ((schema.TIME_FEATURES, 1.0), (PER_SECOND_FEATURES, -1.0)):
        for name in names:
            if name in out:  # each column keeps its dtype (float32 from the loader)
                column = out[name].to_numpy(dtype=np.float64) * scale**power
                out[name] = column.astype(frame[name].dtype)
    return out


def timescale_factors(keys: pd.Series, spread: float, seed: int) -> np.ndarray:
    """One factor per row, log-uniform in [1/spread, spread], the same for every row of a key
    (a host's window: one network, one pace); a missing key is a key of its own."""
    if spread < 1.0:
        raise ValueError(f"time-scale spread {spread} must be at least 1")
    codes, uniques = pd.factorize(keys, use_na_sentinel=True)
    missing = codes < 0
    codes = codes.astype(np.int64)
    codes[missing] = len(uniques) + np.arange(int(missing.sum()))
    rng = np.random.default_rng(seed)
    keys_count = int(codes.max(initial=-1)) + 1
    per_key = np.exp(rng.uniform(-np.log(spread), np.log(spread), size=keys_count))
    return per_key[codes]


JAVA_VERSIONS = "java-versions"

# Augmentation name -> how those flows differ from the Java CICFlowMeter rows trained on: the
# Python package (a layout of stream_ids.layouts), and the differences between Java releases.
AUGMENTATIONS: dict[str, Callable[[pd.DataFrame], pd.DataFrame]] = {
    PYTHON_CICFLOWMETER: as_python_cicflowmeter,
    JAVA_VERSIONS: as_java_versions,
}
