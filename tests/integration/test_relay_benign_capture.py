"""Someone else's normal traffic end to end: a benign app capture (pcap/benign) through the Python
``cicflowmeter``, its CSV relayed to Kafka, a real worker: every flow gets exactly one verdict or
one dead letter with a reason."""

from __future__ import annotations

import csv
import time
from collections import Counter
from pathlib import Path

import pytest
from streaming_harness import Stream

from model.generalization import run_extractor
from producers.relay import relay
from stream_ids.datasets import shared_data_dir

pytestmark = pytest.mark.integration

REPO = Path(__file__).resolve().parents[2]
EXTRACTOR_PYTHON = REPO / ".venv-cicflowmeter" / "bin" / "python"
# ~80 kB of a KakaoTalk chat: a couple of dozen flows (TCP and UDP) in about a second.
CAPTURE = "KakaoTalk_chat.pcap"


@pytest.fixture
def capture_csv(tmp_path: Path) -> Path:
    if not EXTRACTOR_PYTHON.exists():
        pytest.skip("cicflowmeter is not installed: run `bash .ci/install-cicflowmeter.sh`")
    pcap = shared_data_dir() / "pcap" / "benign" / CAPTURE
    if not pcap.is_file():
        pytest.skip(f"{pcap} not in the shared data folder")
    output = tmp_path / "flows.csv"
    extractor = run_extractor(EXTRACTOR_PYTHON, pcap, output)
    assert extractor.returncode == 0, extractor.stderr[-2000:]
    return output


def test_every_flow_of_a_benign_capture_gets_one_verdict_or_a_dead_letter(
    kafka_bootstrap: str, tmp_path: Path, capture_csv: Path
) -> None:
    with capture_csv.open(newline="") as handle:
        rows = list(csv.DictReader(handle))
    assert len(rows) >= 10, f"{CAPTURE}: only {len(rows)} flows extracted"
    stream = Stream(kafka_bootstrap, tmp_path, partitions=2)
    stream.create_topics()
    stream.start_worker("benign1")
    try:
        stream.wait_ready()
        result = relay(stream.settings, follow=capture_csv, poll_s=0.1, idle_exit_s=2.0)
        assert result.failed == 0, result.errors
        assert result.produced + result.dead_lettered == len(rows)
        # The worker answers each published flow with a verdict or a dead letter.
        deadline = time.monotonic() + 120
        while time.monotonic() < deadline:
            verdicts = [v for _, v in stream.read_all(stream.settings.topic_verdicts)]
            dead = [v for _, v in stream.read_all(stream.settings.topic_dead_letter)]
            if len(verdicts) + len(dead) >= len(rows):
                break
            assert stream.alive(), stream.diagnostics()
            time.sleep(1)
        time.sleep(2)  # a duplicate, if any, would arrive now
        verdicts = [v for _, v in stream.read_all(stream.settings.topic_verdicts)]
        dead = [v for _, v in stream.read_all(stream.settings.topic_dead_letter)]
        assert stream.alive(), stream.diagnostics()
    finally:
        stream.stop()
    ids = Counter(v["flow_id"] for v in verdicts)
    assert not ids or max(ids.values()) == 1, [i for i, c in ids.items() if c > 1][:5]
    assert len(verdicts) + len(dead) == len(rows), (len(verdicts), len(dead), len(rows))
    assert all(record.get("reason") for record in dead), dead[:3]
    assert len(verdicts) == result.produced - sum(
        1 for record in dead if record.get("topic") == stream.settings.topic_flows
    )
    for verdict in verdicts:
        assert 0.0 <= verdict["score"] <= 1.0
        assert verdict["is_attack"] == (verdict["score"] >= verdict["threshold"])
