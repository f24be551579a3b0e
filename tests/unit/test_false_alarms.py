"""The false-alarm breakdown of the generalization report (model.false_alarms)."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest

from model import false_alarms
from model.false_alarms import (
    INBOUND,
    INTERNAL,
    LINK_LOCAL,
    MULTICAST,
    NO_ADDRESSES,
    OUTBOUND,
    PARTLY_KNOWN,
    PUBLIC,
)


@pytest.mark.parametrize(
    ("source", "destination", "expected"),
    [
        ("91.98.59.195", "172.31.67.41", INBOUND),
        ("192.168.10.5", "8.8.8.8", OUTBOUND),
        ("10.0.0.1", "192.168.1.2", INTERNAL),
        ("172.31.66.49", "169.254.169.254", LINK_LOCAL),
        ("8.8.4.4", "1.1.1.1", PUBLIC),
        ("192.168.1.7", "239.255.255.250", MULTICAST),
        ("192.168.1.7", "255.255.255.255", MULTICAST),
        ("2001:4860::8888", "fd00::1", INBOUND),
        (None, None, NO_ADDRESSES),
        ("192.168.1.7", "not an address", PARTLY_KNOWN),
        (None, "8.8.8.8", PARTLY_KNOWN),
        ("::ffff:172.31.66.49", "::ffff:169.254.169.254", LINK_LOCAL),
        ("::ffff:192.168.1.7", "::ffff:224.0.0.251", MULTICAST),
        ("::ffff:91.98.59.195", "::ffff:10.0.0.4", INBOUND),
    ],
)
def test_direction_follows_the_address_scopes(source, destination, expected):
    assert false_alarms.direction(source, destination) == expected


def test_service_names_the_protocol_and_port():
    assert false_alarms.service(6, 445.0) == "TCP/445"
    assert false_alarms.service(17.0, 53) == "UDP/53"
    assert false_alarms.service(1, 0) == "ICMP"
    assert false_alarms.service(47, 0) == "proto 47/0"
    assert false_alarms.service(None, float("nan")) == "?/?"
    assert false_alarms.service(6, float("inf")) == "TCP/?"


def _flows(rows):
    return pd.DataFrame(rows, columns=["src_ip", "dst_ip", "protocol", "dst_port", "is_attack"])


def test_breakdown_groups_benign_false_alarms_most_first_and_ignores_attacks():
    frame = _flows(
        [
            ("91.98.59.195", "172.31.67.41", 6, 445, 0),  # alerts
            ("5.2.67.66", "172.31.64.124", 6, 445, 0),  # alerts
            ("5.2.67.66", "172.31.64.125", 6, 445, 0),  # does not
            ("172.31.66.49", "169.254.169.254", 6, 80, 0),  # alerts
            ("172.31.66.49", "52.1.2.3", 6, 443, 0),  # does not
            ("172.31.66.49", "52.1.2.3", 6, 443, 1),  # an attack: never a false alarm
            ("172.31.66.49", "52.1.2.4", 6, 443, 0),  # dead-lettered (NaN): no alert
        ]
    )
    scores = np.array([0.9, 0.6, 0.2, 0.7, 0.1, 0.99, np.nan])
    found = false_alarms.breakdown(scores, frame, threshold=0.5)
    assert found["benign"] == 6
    assert found["false_alarms"] == 3
    assert found["kinds"] == [
        {
            "direction": INBOUND,
            "service": "TCP/445",
            "benign": 3,
            "false_alarms": 2,
            "false_alarm_rate": pytest.approx(2 / 3),
        },
        {
            "direction": LINK_LOCAL,
            "service": "TCP/80",
            "benign": 1,
            "false_alarms": 1,
            "false_alarm_rate": 1.0,
        },
    ]
    assert found["other_false_alarms"] == 0


def test_breakdown_keeps_the_top_kinds_and_counts_the_rest():
    frame = _flows([(f"10.0.0.{port}", "10.0.1.1", 17, port, 0) for port in range(1, 6)])
    found = false_alarms.breakdown(np.ones(5), frame, threshold=0.5, top=2)
    assert len(found["kinds"]) == 2
    assert found["other_false_alarms"] == 3
    lines = false_alarms.markdown_lines({"site": found}, "model-x", "_stamp_")
    assert "| site | every other kind | | 3 of 5 | | |" in lines
    assert lines[-2] == "_stamp_"


def test_breakdown_refuses_scores_of_another_length():
    with pytest.raises(ValueError, match="3 scores for 1 flows"):
        false_alarms.breakdown(np.zeros(3), _flows([(None, None, 6, 80, 0)]), 0.5)


def test_frames_without_address_columns_are_one_kind():
    frame = pd.DataFrame({"protocol": [6, 6], "dst_port": [80, 80], "is_attack": [0, 0]})
    found = false_alarms.breakdown(np.array([0.9, 0.1]), frame, threshold=0.5)
    assert found["kinds"][0]["direction"] == NO_ADDRESSES
    assert found["kinds"][0]["false_alarm_rate"] == 0.5
