"""Recalibration without a restart (the worker's watch of calibration.json) and the streamed
half of ``stream-ids calibrate`` (flows topic messages -> canonical frame), without Kafka."""

from __future__ import annotations

import logging
from pathlib import Path
from types import SimpleNamespace
from typing import Any

import numpy as np
import orjson
import pytest

from stream_ids.agents.calibration import apply_event
from stream_ids.calibration import CALIBRATION_FILE, Calibration, CalibrationWatch
from stream_ids.rolling import Counts, RollingStats
from stream_ids.wire import Stats

SHA = "a" * 64


def _calibration(sha: str = SHA, site: str = "lab", target: float = 0.01) -> Calibration:
    return Calibration(
        site=site, model_version="v", model_sha256=sha, threshold=0.93, target_alert_rate=target,
        flows_used=1000, clean_quantile_threshold=0.93, ceiling=0.97, capped=False,
        expected_alert_rate=0.009, reference_recall=0.98, min_recall=0.95, sources=("a.csv",),
        created="2026-11-30T08:00:00Z",
    )  # fmt: skip


def test_watch_sees_new_changed_refused_and_removed_calibrations(tmp_path: Path) -> None:
    watch = CalibrationWatch(tmp_path, SHA, None)
    assert watch.poll() is None  # no file, no calibration: nothing to do
    first = _calibration()
    first.write(tmp_path)
    event = watch.poll()
    assert event is not None and event.changed and event.old is None and event.new == first
    assert watch.poll() is None  # unchanged file: one stat, no event
    first.write(tmp_path)  # same content rewritten (new inode and mtime): no event
    assert watch.poll() is None
    second = _calibration(site="lab-2", target=0.002)
    second.write(tmp_path)
    event = watch.poll()
    assert event is not None and event.changed and (event.old, event.new) == (first, second)
    _calibration(sha="b" * 64).write(tmp_path)  # made for another model
    event = watch.poll()
    assert event is not None and not event.changed and event.new == second
    assert event.error is not None and "made for model bbbb" in event.error
    assert watch.poll() is None  # refused once, not at every poll
    (tmp_path / CALIBRATION_FILE).write_text("{half a file")
    event = watch.poll()
    assert event is not None and not event.changed and "unreadable" in str(event.error)
    (tmp_path / CALIBRATION_FILE).unlink()
    event = watch.poll()
    assert event is not None and event.changed and (event.old, event.new) == (second, None)
    assert watch.poll() is None


def test_a_watch_started_with_the_loaded_calibration_is_quiet(tmp_path: Path) -> None:
    loaded = _calibration()
    loaded.write(tmp_path)
    assert CalibrationWatch(tmp_path, SHA, loaded).poll() is None


class _Model:
    def __init__(self) -> None:
        self.model_threshold = 0.5
        self.threshold = 0.5
        self.calibration: Calibration | None = None

    def apply_calibration(self, calibration: Calibration | None) -> None:
        self.calibration = calibration
        self.threshold = self.model_threshold if calibration is None else calibration.threshold


def test_applied_changes_reach_the_agent_threshold_and_the_stats(
    tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    model, scorer, stats = _Model(), SimpleNamespace(threshold=0.5), RollingStats("w", 0.0)
    stats.set_threshold(0.5)
    watch = CalibrationWatch(tmp_path, SHA, None)
    _calibration().write(tmp_path)
    with caplog.at_level(logging.WARNING, logger="stream_ids.agents.calibration"):
        event = watch.poll()
        assert event is not None
        apply_event(event, model, scorer, stats)
    assert scorer.threshold == model.threshold == 0.93
    assert caplog.messages == [
        "calibration applied: threshold 0.5 (the model's own) -> 0.93 (site 'lab', target "
        "1.000% alerts)"
    ]
    stats.add(Counts(flows=200, alerts=3), at=5.0)
    records = stats.snapshot(now=6.0)
    assert {r["window"] for r in records} == {"tumbling_10s", "sliding_60s", "cumulative"}
    for record in records:
        assert record["threshold"] == 0.93 and record["calibrated"] is True
        assert record["calibration_site"] == "lab" and record["target_alert_rate"] == 0.01
        assert record["alert_rate"] == pytest.approx(3 / 200)
        Stats(**record)  # the typed record takes every field
    _calibration(sha="c" * 64).write(tmp_path)
    caplog.clear()
    with caplog.at_level(logging.WARNING, logger="stream_ids.agents.calibration"):
        event = watch.poll()
        assert event is not None
        apply_event(event, model, scorer, stats)
    assert scorer.threshold == 0.93  # refused: the calibration in force stays
    assert len(caplog.messages) == 1 and caplog.messages[0].startswith(
        "calibration refused, threshold stays 0.93 (site 'lab'"
    )
    (tmp_path / CALIBRATION_FILE).unlink()
    event = watch.poll()
    assert event is not None
    apply_event(event, model, scorer, stats)
    assert scorer.threshold == 0.5
    record = stats.snapshot(now=7.0)[-1]
    assert record["calibrated"] is False and record["target_alert_rate"] is None
    assert record["calibration_site"] is None and record["threshold"] == 0.5


def test_old_stats_records_still_read() -> None:
    old = {"worker": "w", "window": "cumulative", "window_start": 0.0, "window_end": 1.0,
           "flows": 0, "alerts": 0, "emitted_at": 1.0}  # fmt: skip
    record = Stats(**old)
    assert record.threshold is None and record.calibrated is False and record.alert_rate is None


def _wire_flow(index: int, label: str | None, **overrides: Any) -> dict[str, Any]:
    from stream_ids.schema import FEATURE_NAMES

    flow = {
        "schema": 1, "flow_id": f"f{index}", "src_ip": "10.0.0.1", "src_port": 1000 + index,
        "dst_ip": "10.0.0.2", "dst_port": 443, "protocol": 6, "timestamp": 1.7e9 + index,
        "produced_at": 1.8e9, "label": label,
        "features": {name: float(index + 1) for name in FEATURE_NAMES},
    }  # fmt: skip
    flow.update(overrides)
    return flow


def test_streamed_flows_become_the_canonical_frame_the_file_path_scores() -> None:
    from stream_ids.commands.calibrate import columns_frame
    from stream_ids.loader import OUTPUT_COLUMNS
    from stream_ids.schema import FEATURE_NAMES
    from stream_ids.wire import FlowColumns, parse_columns

    parts, invalid = [], []
    messages = [
        _wire_flow(0, "BENIGN"),
        _wire_flow(1, "DDoS"),
        _wire_flow(2, None),
        _wire_flow(3, "BENIGN", features={"flow_duration": -1.0}),  # a missing feature
    ]
    for obj in messages:
        columns, rejected = parse_columns(orjson.dumps(obj), b"10.0.0.1")
        parts.append(columns)
        invalid.extend(error.reason for _e, error, _raw in rejected)
    frame = columns_frame(FlowColumns.concat(parts))
    assert list(frame.columns) == list(OUTPUT_COLUMNS)
    assert invalid == ["missing_field"]
    assert frame["flow_id"].tolist() == ["f0", "f1", "f2"]
    assert frame["is_attack"].tolist() == [0, 1, -1]
    assert frame["protocol"].tolist() == [6.0, 6.0, 6.0]
    assert frame[list(FEATURE_NAMES)].to_numpy()[1] == pytest.approx(np.full(76, 2.0))
