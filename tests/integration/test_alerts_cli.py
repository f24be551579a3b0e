"""``stream-ids alerts --json --min-score``: JSON lines of the alerts topic, for other tools."""

from __future__ import annotations

import subprocess
import sys
from collections.abc import Callable

import orjson
import pytest
from kafka_helpers import create_topic, produce_json

pytestmark = pytest.mark.integration


def test_alerts_json_lines_filtered_by_score(
    kafka_bootstrap: str, unique_topic: Callable[[str], str]
) -> None:
    topic = unique_topic("alerts")
    create_topic(kafka_bootstrap, topic, partitions=2)
    alerts = [
        {"flow_id": f"f-{index}", "src_ip": f"10.0.0.{index % 5}", "dst_ip": "192.168.10.50",
         "dst_port": 80, "score": score, "is_attack": True, "threshold": 0.5, "label": "DDoS"}
        for index, score in enumerate([0.51, 0.95, 0.7, 0.99, 0.9, 1.0])
    ]
    produce_json(kafka_bootstrap, topic, [(a["src_ip"], a) for a in alerts] + [("x", b"not json")])

    result = subprocess.run(
        [sys.executable, "-m", "stream_ids.cli", "alerts", "--json", "--min-score", "0.9",
         "--bootstrap", kafka_bootstrap, "--topic", topic],
        capture_output=True, timeout=120, check=False,
    )
    assert result.returncode == 0, result.stderr.decode()[-2000:]
    lines = [orjson.loads(line) for line in result.stdout.splitlines() if line.strip()]
    assert sorted(line["flow_id"] for line in lines) == ["f-1", "f-3", "f-4", "f-5"]
    assert all(line["score"] >= 0.9 for line in lines)
