"""Reliability (3): the broker stops and restarts mid-replay (same data dir, own broker).

The replay producer (idempotent, ``message.timeout.ms`` 120 s) keeps retrying while the broker
is down, the worker (Faust/aiokafka) reconnects and rejoins its group; no flow is lost.
"""

from __future__ import annotations

import json
import time

import pytest
from reliability_harness import BackgroundReplay, ReliabilityStream, Tracker, summarise
from test_reliability_tls import _free_ports

from producers.replay import load_replay_frame
from stream_ids.broker import LocalBroker
from stream_ids.datasets import improved_csvs

pytestmark = [pytest.mark.integration, pytest.mark.slow]
N_FLOWS = 6000
RATE = 150.0  # flows/s: the replay spans the restart


def test_broker_restart_mid_replay_loses_nothing(tmp_path):
    port = _free_ports(2)[0]
    broker = LocalBroker(port=port, data_dir=tmp_path / "broker")
    broker.start()
    frame = load_replay_frame(improved_csvs(), limit=N_FLOWS)
    stream = ReliabilityStream(broker.bootstrap, tmp_path, partitions=4)
    tracker = None
    try:
        stream.create_topics()
        stream.start_worker("b1")
        stream.wait_ready()
        tracker = Tracker(stream.settings, stream.settings.topic_verdicts)
        tracker.start()
        producer = BackgroundReplay(stream.settings, frame, "b", rate=RATE)
        producer.start()
        tracker.wait_unique(int(0.3 * N_FLOWS), timeout=300, alive=stream.alive)
        stopped_at = tracker.unique
        broker.stop()
        time.sleep(5)
        broker.start()
        tracker.wait_unique(N_FLOWS, timeout=300)
        time.sleep(3)
        producer.join(120)
        assert producer.error is None, producer.error
        assert producer.result.delivered == N_FLOWS, producer.result
        assert stream.alive(), stream.diagnostics()
        log = (tmp_path / "b1.log").read_text(errors="replace")
    finally:
        if tracker is not None:
            tracker.stop()
        stream.stop()
        broker.stop()
    summary = summarise(tracker.records, N_FLOWS)
    summary.update(broker_stopped_at_verdicts=stopped_at,
                   rebalances=log.count("Elected group leader"))
    print(f"\nbroker-restart: {json.dumps(summary)}")
    assert summary["lost"] == 0
    assert summary["rebalances"] < 10, "rebalance loop after the broker restart"
