"""A changelog partition whose records never reach Faust's recovery (docs/reliability.md, fix 5).

A first worker scores the first half of the flows and stops; a second worker, whose Faust drops
the first delivery of every changelog record during recovery (``faulty_worker.py``), takes over.
Without the recovery watch it would stay in recovery for good and score nothing more; with it,
every flow of both halves gets a verdict with the uninterrupted per-host score, so the host
histories written by the first worker were restored.
"""

from __future__ import annotations

import signal
from pathlib import Path

import pytest
from reliability_harness import BackgroundReplay, ReliabilityStream, summarise

from producers.replay import load_replay_frame
from stream_ids.datasets import improved_csvs

pytestmark = [pytest.mark.integration, pytest.mark.slow]

FAULTY_WORKER = Path(__file__).with_name("faulty_worker.py")
N_FLOWS = 6_000


def test_a_worker_whose_recovery_loses_changelog_records_recovers_them(
    kafka_bootstrap, tmp_path
):
    from stream_ids.scorer import Scorer

    frame = load_replay_frame(improved_csvs()).iloc[:N_FLOWS].reset_index(drop=True)
    expected = Scorer.load().score_frame(frame)
    half = N_FLOWS // 2
    stream = ReliabilityStream(kafka_bootstrap, tmp_path)
    with stream.running("first") as tracker:
        first = BackgroundReplay(stream.settings, frame.iloc[:half], "a")
        first.start()
        tracker.wait_unique(half, timeout=300, alive=stream.check_alive)
        assert stream.signal_worker("first", signal.SIGTERM) == 0
        stream.start_worker("second", runner=FAULTY_WORKER)
        stream.wait_log("second", b"recovery stalled")  # the fault happened, the watch saw it
        second = BackgroundReplay(
            stream.settings, frame.iloc[half:].reset_index(drop=True), "b"
        )
        second.start()
        tracker.wait_unique(N_FLOWS, timeout=300, alive=stream.check_alive)
        first.join(60)
        second.join(60)
        assert first.error is None and second.error is None
    log = (tmp_path / "second.log").read_text(errors="replace")
    assert "faulty_worker: dropping first deliveries" in log
    # "b-0-i" is row half + i of the frame the expected scores were computed on
    verdicts = [
        dict(v, flow_id=f"x-0-{half + int(v['flow_id'].rsplit('-', 1)[1])}")
        if v["flow_id"].startswith("b-")
        else v
        for v in tracker.records
    ]
    summary = summarise(verdicts, N_FLOWS, expected)
    assert summary["lost"] == 0, summary
    assert summary["score_mismatch_any"] == 0, summary
