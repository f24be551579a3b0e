"""Where a model's false alarms are: benign flows grouped by direction and service.

A false-alarm rate says how often ordinary traffic alerts, not which traffic. Grouping the
benign flows of a source by *direction* (from the addresses: private, public, link-local) and
*service* (protocol and destination port) says what a site's analysts would see in the alert
topic, and tells apart a model that fires on one kind of traffic from one that fires everywhere.
It changes no label: a flow the dataset calls benign counts as a false alarm here too.
"""

from __future__ import annotations

import ipaddress
from collections.abc import Mapping, Sequence
from functools import lru_cache
from typing import Any

import numpy as np
import pandas as pd

# Direction of a flow from its addresses (source -> destination).
INBOUND = "inbound from a public address"
OUTBOUND = "outbound to a public address"
INTERNAL = "between private addresses"
LINK_LOCAL = "to or from a link-local address"
PUBLIC = "between public addresses"
MULTICAST = "to a multicast or broadcast address"
NO_ADDRESSES = "no addresses in the file"
PARTLY_KNOWN = "an address missing or unreadable"

PROTOCOL_NAMES = {6: "TCP", 17: "UDP", 1: "ICMP"}


@lru_cache(maxsize=65_536)
def address_scope(address: str) -> str | None:
    """``private``, ``public``, ``link-local``, ``multicast`` or None (missing or unparsable)."""
    try:
        parsed = ipaddress.ip_address(address.strip())
    except (AttributeError, ValueError):
        return None
    if isinstance(parsed, ipaddress.IPv6Address) and parsed.ipv4_mapped is not None:
        parsed = parsed.ipv4_mapped  # ::ffff:169.254.169.254 is the IPv4 address's scope
    if parsed.is_multicast or str(parsed) == "255.255.255.255":
        return "multicast"
    if parsed.is_link_local:
        return "link-local"  # 169.254.169.254 is the cloud metadata service
    if parsed.is_private or parsed.is_loopback:
        return "private"
    return "public"


def direction(source: Any, destination: Any) -> str:
    """One of the module's direction names for a flow from ``source`` to ``destination``."""
    scopes = (
        address_scope(source) if isinstance(source, str) else None,
        address_scope(destination) if isinstance(destination, str) else None,
    )
    if scopes == (None, None):
        return NO_ADDRESSES
    if "multicast" in scopes:
        return MULTICAST
    if "link-local" in scopes:
        return LINK_LOCAL
    if scopes == ("public", "private"):
        return INBOUND
    if scopes == ("private", "public"):
        return OUTBOUND
    if scopes == ("public", "public"):
        return PUBLIC
    if scopes == ("private", "private"):
        return INTERNAL
    return PARTLY_KNOWN  # the file cannot say which way the flow went


def service(protocol: Any, port: Any) -> str:
    """``TCP/445``; the protocol number when it has no name here; ``?`` for a missing part."""
    try:
        number = int(protocol)
        name = PROTOCOL_NAMES.get(number, f"proto {number}")
    except (TypeError, ValueError, OverflowError):
        name = "?"
    try:
        port_text = str(int(port))
    except (TypeError, ValueError, OverflowError):
        port_text = "?"
    return name if name == "ICMP" else f"{name}/{port_text}"


def _column(frame: pd.DataFrame, name: str) -> Sequence[Any]:
    return frame[name].to_numpy() if name in frame.columns else [None] * len(frame)


def traffic_kinds(frame: pd.DataFrame) -> pd.DataFrame:
    """Per flow of a canonical ``frame``: its ``direction`` and ``service``."""
    sources, destinations = _column(frame, "src_ip"), _column(frame, "dst_ip")
    protocols, ports = _column(frame, "protocol"), _column(frame, "dst_port")
    return pd.DataFrame(
        {
            "direction": [
                direction(source, destination)
                for source, destination in zip(sources, destinations, strict=True)
            ],
            "service": [
                service(protocol, port) for protocol, port in zip(protocols, ports, strict=True)
            ],
        },
        index=frame.index,
    )


def breakdown(scores: Any, frame: pd.DataFrame, threshold: float, top: int = 6) -> dict[str, Any]:
    """The benign flows of ``frame`` by direction and service, with the false alarms of each.

    Returns ``false_alarms`` and ``benign`` in all, and ``kinds``: the ``top`` kinds with the most
    false alarms (then the most flows), each with direction, service, benign flows, false alarms
    and the kind's false-alarm rate; ``other_false_alarms`` counts those of the remaining kinds.
    """
    score = np.asarray(scores, dtype=np.float64).ravel()
    if len(score) != len(frame):
        raise ValueError(f"{len(score)} scores for {len(frame)} flows")
    benign = frame["is_attack"].to_numpy(dtype=np.int64) == 0
    rows = traffic_kinds(frame.loc[benign])
    # a NaN score (a flow the worker dead-letters) never alerts
    rows["false_alarm"] = score[benign] >= threshold
    grouped = (
        rows.groupby(["direction", "service"], sort=False)["false_alarm"]
        .agg(["size", "sum"])
        .reset_index()
        .sort_values(["sum", "size", "direction", "service"], ascending=[False, False, True, True])
    )
    kinds = [
        {
            "direction": str(row.direction),
            "service": str(row.service),
            "benign": int(row.size),
            "false_alarms": int(row.sum),
            "false_alarm_rate": float(row.sum) / float(row.size),
        }
        for row in grouped.head(top).itertuples(index=False)
        if row.sum > 0
    ]
    total = int(rows["false_alarm"].sum())
    return {
        "benign": int(benign.sum()),
        "false_alarms": total,
        "kinds": kinds,
        "other_false_alarms": total - sum(kind["false_alarms"] for kind in kinds),
    }


def markdown_lines(
    by_source: Mapping[str, Mapping[str, Any]], model_name: str, stamp: str
) -> list[str]:
    """The report's section: per source, the kinds of benign traffic that alert most."""
    lines = [
        "## Where the false alarms are",
        "",
        f"The benign flows that **{model_name}** alerts on at its own threshold, per source, "
        "grouped by direction (from the addresses: private, public, link-local) and service "
        "(protocol and destination port), the kinds with the most false alarms first "
        "(`model.false_alarms`). *Rate* is the kind's own: its false alarms over its benign flows. "
        "Labels are the dataset's: a flow it calls benign counts as a false alarm here.",
        "",
        "| source | direction | service | false alarms | benign flows of the kind | rate |",
        "|---|---|---|---|---|---|",
    ]
    for source, found in by_source.items():
        if not found.get("false_alarms"):
            continue
        for kind in found["kinds"]:
            lines.append(
                f"| {source} | {kind['direction']} | {kind['service']} | "
                f"{kind['false_alarms']:,} of {found['false_alarms']:,} | {kind['benign']:,} | "
                f"{100 * kind['false_alarm_rate']:.1f}% |"
            )
        if found["other_false_alarms"]:
            lines.append(
                f"| {source} | every other kind | | {found['other_false_alarms']:,} of "
                f"{found['false_alarms']:,} | | |"
            )
    return [*lines, "", stamp, ""]
