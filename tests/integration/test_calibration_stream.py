"""Per-site calibration end to end: calibrate from the flows topic, a running worker picks it up.

Benign flows of another network (CSE-CIC-IDS2018, AWS hosts, not in the shipped model's
training data: ~9% of them alert at the model's own threshold) go through a real broker and a
real `stream-ids worker` with a temporary copy of the shipped model:

1. half A (every other benign flow, in time order) is replayed; the worker's verdicts give the
   alert rate before calibration;
2. `stream-ids calibrate --from-topic FLOWS --limit |A|` reads A back from the topic and writes
   calibration.json beside the worker's model; the running worker logs the change and its
   verdicts and stats carry the calibrated threshold, without a restart;
3. half B (the other benign flows: the same traffic) is replayed; its alert rate must fall far
   below the rate before, to the calibration's own ``expected_alert_rate`` within a tolerance
   (the attack floor caps the threshold, so the 0.1% target itself is out of reach here).

B's hosts are renamed (``<ip>-b``): each of its flows is then scored in a window of B's flows
only, as the calibration scored A's. With A's history carried over, hosts with one or two
flows in this sparse 9-day sample get windows made mostly of A's flows days apart, and the
rate on B measured offline was 3.5% instead of 0.9% (docs/operations.md, "Per-site
calibration").
"""

from __future__ import annotations

import shutil
import subprocess
import sys
import time
from collections import Counter
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest
from streaming_harness import REPO, Stream

from producers.replay import load_replay_frame, replay
from stream_ids.artifacts import shipped_model_dir
from stream_ids.calibration import CALIBRATION_FILE, Calibration
from stream_ids.datasets import shared_data_candidate
from stream_ids.settings import Settings

pytestmark = pytest.mark.integration

CSE = shared_data_candidate() / "other-datasets/cse-cic-ids2018-improved/sample-9-days.csv"


def _stream(bootstrap: str, tmp: Path, unique_topic: Callable[[str], str], model: Path) -> Stream:
    """The harness's isolated deployment, with this test's topic names and model copy."""
    stream = Stream(bootstrap, tmp, partitions=4)
    names = {name: unique_topic(f"calib-{name}") for name in
             ("flows", "verdicts", "alerts", "stats", "dlq")}  # fmt: skip
    stream.env.update(
        {
            "STREAM_IDS_TOPIC_FLOWS": names["flows"],
            "STREAM_IDS_TOPIC_VERDICTS": names["verdicts"],
            "STREAM_IDS_TOPIC_ALERTS": names["alerts"],
            "STREAM_IDS_TOPIC_STATS": names["stats"],
            "STREAM_IDS_TOPIC_DEAD_LETTER": names["dlq"],
            "STREAM_IDS_APP_ID": unique_topic("calib-app"),
            "STREAM_IDS_MODEL_DIR": str(model),
        }
    )
    stream.settings = Settings(
        bootstrap_servers=bootstrap,
        topic_flows=names["flows"],
        topic_verdicts=names["verdicts"],
        topic_alerts=names["alerts"],
        topic_stats=names["stats"],
        topic_dead_letter=names["dlq"],
        app_id=stream.env["STREAM_IDS_APP_ID"],
        topic_partitions=4,
    )
    return stream


def _verdicts(stream: Stream, count: int) -> list[dict[str, Any]]:
    """Every verdict so far, once ``count`` arrived."""
    stream.collect(stream.settings.topic_verdicts, count, timeout=120)
    return [value for _key, value in stream.read_all(stream.settings.topic_verdicts)]


def _wait(what: str, predicate: Callable[[], Any], stream: Stream, timeout: float = 60) -> Any:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        value = predicate()
        if value:
            return value
        assert stream.alive(), stream.diagnostics()
        time.sleep(0.5)
    raise AssertionError(f"timed out waiting for {what}:\n{stream.diagnostics()}")


def test_calibrate_from_the_topic_and_the_running_worker_picks_it_up(
    kafka_bootstrap: str, unique_topic: Callable[[str], str], tmp_path: Path
) -> None:
    if not CSE.is_file():
        pytest.skip(f"{CSE} not found (shared data)")
    model = tmp_path / "model"
    shutil.copytree(shipped_model_dir(), model, ignore=shutil.ignore_patterns(CALIBRATION_FILE))
    frame = load_replay_frame([CSE])
    benign = frame.loc[frame["is_attack"] == 0].reset_index(drop=True)
    half_a = benign.iloc[0::2].reset_index(drop=True)
    half_b = benign.iloc[1::2].reset_index(drop=True)
    half_b["src_ip"] = half_b["src_ip"] + "-b"
    stream = _stream(kafka_bootstrap, tmp_path, unique_topic, model)
    stream.create_topics()
    stream.start_worker("w1")
    try:
        stream.wait_ready()
        sent = replay([], stream.settings, frame=half_a, id_prefix="a", progress=False)
        assert sent.delivered == len(half_a) and sent.failed == 0
        before = _verdicts(stream, len(half_a))
        model_threshold = before[0]["threshold"]
        rate_before = sum(v["is_attack"] for v in before) / len(before)
        assert {v["threshold"] for v in before} == {model_threshold}
        assert rate_before > 0.05, rate_before  # the model alone: many false alarms here

        calibrate = subprocess.run(
            [sys.executable, "-m", "stream_ids.cli", "calibrate", "--from-topic",
             stream.settings.topic_flows, "--limit", str(len(half_a)), "--timeout", "60",
             "--site", "aws-lab", "--model", str(model)],
            env=stream.env, cwd=REPO, capture_output=True, text=True, timeout=180, check=False,
        )  # fmt: skip
        assert calibrate.returncode == 0, calibrate.stderr
        assert f"read {len(half_a)} flows" in calibrate.stderr, calibrate.stderr
        calibration = Calibration.read(model / CALIBRATION_FILE)
        assert calibration.site == "aws-lab" and calibration.flows_used == len(half_a)
        assert calibration.threshold > model_threshold

        # the running worker applies it (no restart), says so once, and reports it on stats
        line = (
            f"calibration applied: threshold {model_threshold:.6g} (the model's own) -> "
            f"{calibration.threshold:.6g} (site 'aws-lab'"
        )
        _wait("the worker's calibration log line", lambda: line in stream.logs(), stream)
        assert stream.logs().count("calibration applied") == 1

        def calibrated_stats() -> list[dict[str, Any]]:
            records = [v for _k, v in stream.read_all(stream.settings.topic_stats)]
            return [r for r in records if r.get("calibrated")]

        stats = _wait("stats with the calibrated threshold", calibrated_stats, stream)[-1]
        assert stats["threshold"] == calibration.threshold
        assert stats["calibration_site"] == "aws-lab"
        assert stats["target_alert_rate"] == calibration.target_alert_rate

        sent = replay([], stream.settings, frame=half_b, id_prefix="b", progress=False)
        assert sent.delivered == len(half_b) and sent.failed == 0
        verdicts = _verdicts(stream, len(half_a) + len(half_b))
        assert stream.alive(), stream.diagnostics()
    finally:
        stream.stop()

    # every flow got exactly one verdict
    counts = Counter(v["flow_id"] for v in verdicts)
    assert len(counts) == len(half_a) + len(half_b) and set(counts.values()) == {1}
    after = [v for v in verdicts if v["flow_id"].startswith("b-")]
    assert len(after) == len(half_b)
    assert {v["threshold"] for v in after} == {calibration.threshold}
    assert all(v["is_attack"] == (v["score"] >= calibration.threshold) for v in after)
    rate_after = sum(v["is_attack"] for v in after) / len(after)
    print(
        f"alert rate before {rate_before:.2%} ({len(before)} flows), after {rate_after:.2%} "
        f"({len(after)} flows); calibration expects {calibration.expected_alert_rate:.2%} "
        f"(threshold {calibration.threshold:.6g}, capped {calibration.capped})"
    )
    assert rate_after < rate_before / 3
    assert rate_after <= calibration.expected_alert_rate + 0.01
