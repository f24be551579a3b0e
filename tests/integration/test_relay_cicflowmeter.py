"""Live relay: the real Python ``cicflowmeter`` extracts flows from a real CIC-DDoS2019 capture
while ``relay --follow`` publishes its CSV to Kafka as it grows."""

from __future__ import annotations

import csv
import threading
import time
from collections.abc import Callable
from pathlib import Path

import pytest
from kafka_helpers import consume_all

from model.generalization import run_extractor
from producers.relay import RelayResult, relay
from stream_ids.datasets import shared_data_dir
from stream_ids.settings import Settings
from stream_ids.wire import parse_flow_message

pytestmark = pytest.mark.integration

REPO = Path(__file__).resolve().parents[2]
EXTRACTOR_PYTHON = REPO / ".venv-cicflowmeter" / "bin" / "python"


@pytest.fixture
def extractor_python() -> Path:
    if not EXTRACTOR_PYTHON.exists():
        pytest.skip("cicflowmeter is not installed: run `bash .ci/install-cicflowmeter.sh`")
    return EXTRACTOR_PYTHON


def test_relay_follows_cicflowmeter_output_while_it_is_written(
    kafka_bootstrap: str,
    unique_topic: Callable[[str], str],
    tmp_path: Path,
    extractor_python: Path,
) -> None:
    pcap = shared_data_dir() / "pcap" / "CIC-DDoS-2019-SynFlood.pcap"
    output = tmp_path / "flows.csv"
    settings = Settings(
        bootstrap_servers=kafka_bootstrap,
        topic_flows=unique_topic("relay-flows"),
        topic_dead_letter=unique_topic("relay-dlq"),
    )
    results: list[RelayResult] = []
    sizes_seen: list[int] = []  # file sizes whenever the relay published something

    def on_batch(_count: int) -> None:
        sizes_seen.append(output.stat().st_size if output.exists() else 0)

    # The relay starts first, on a file that does not exist yet, as it would beside a capture.
    relay_thread = threading.Thread(
        target=lambda: results.append(
            relay(settings, follow=output, poll_s=0.1, idle_exit_s=6.0, on_batch=on_batch)
        )
    )
    relay_thread.start()
    extractor = run_extractor(extractor_python, pcap, output)
    assert extractor.returncode == 0, extractor.stderr[-2000:]
    final_size = output.stat().st_size
    relay_thread.join(timeout=120)
    assert not relay_thread.is_alive()

    with output.open(newline="") as handle:
        rows = list(csv.DictReader(handle))
    assert len(rows) > 1000  # the SYN flood capture holds thousands of flows
    (result,) = results
    assert result.failed == 0 and result.dead_lettered == 0
    assert result.produced == len(rows)
    # It published while the extractor was still writing, not only at the end.
    assert any(size < final_size for size in sizes_seen)

    received = consume_all(
        kafka_bootstrap, settings.topic_flows, len(rows), timeout_s=60, decode=False
    )
    assert len(received) == len(rows)
    flows = [parse_flow_message(value, key.encode()) for key, value in received]
    by_tuple: dict[tuple, list] = {}
    for flow in flows:
        by_tuple.setdefault((flow.src_ip, flow.src_port, flow.dst_ip, flow.dst_port), []).append(
            flow.features
        )
    for row in rows[:300]:
        candidates = by_tuple[
            (row["src_ip"], int(row["src_port"]), row["dst_ip"], int(row["dst_port"]))
        ]
        # Seconds in the Python extractor's CSV, microseconds on the wire (as Java CICFlowMeter).
        assert any(
            features["flow_duration"] == pytest.approx(float(row["flow_duration"]) * 1e6)
            and features["total_fwd_packets"] == float(row["tot_fwd_pkts"])
            and features["init_win_bytes_fwd"] == float(row["init_fwd_win_byts"])
            for features in candidates
        )
    assert time.time() - flows[0].produced_at < 600
