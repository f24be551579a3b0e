"""Dashboard state folding and its HTTP endpoints, without Kafka."""
# ruff: noqa: S310 - only http://127.0.0.1 URLs

from __future__ import annotations

import json
import re
import urllib.request
from http.server import ThreadingHTTPServer
from pathlib import Path
from threading import Thread

import pytest

import stream_ids.dashboard as dashboard_static
from stream_ids.dashboard.server import make_handler
from stream_ids.dashboard.state import DashboardState

NOW = 1_795_800_100.5


def _stats(worker: str, window: str, tp, fp, tn, fn, emitted_at: float = NOW) -> dict:
    return {
        "worker": worker, "window": window, "window_start": NOW - 60, "window_end": NOW,
        "flows": 100, "alerts": 10, "tp": tp, "fp": fp, "tn": tn, "fn": fn,
        "false_alarm_rate": None, "precision": None, "recall": None, "emitted_at": emitted_at,
    }  # fmt: skip


def test_counts_rates_hosts_and_alerts() -> None:
    state = DashboardState(history_s=20, bin_s=2, rate_window_s=10, clock=lambda: NOW)
    state.count_verdicts([NOW - 3] * 50 + [NOW - 30] * 7)  # 7 outside the chart, still counted
    state.count_alerts([(NOW - 3, "10.0.0.9")] * 4 + [(NOW - 5, "10.0.0.7")])
    state.add_alert_records(
        [{"scored_at": NOW - 3, "src_ip": "10.0.0.9", "dst_ip": "10.0.0.1", "dst_port": 80,
          "score": 0.97, "label": "DDoS"}]
    )  # fmt: skip
    snap = state.snapshot()
    assert snap["verdicts_total"] == 57
    assert snap["alerts_total"] == 5
    assert snap["flows_per_s"] == pytest.approx(5.0)
    assert snap["alerts_per_s"] == pytest.approx(0.5)
    points = snap["series"]["points"]
    assert len(points) == 10
    assert sum(p[1] for p in points) * 2 == 50
    assert snap["top_hosts"] == [["10.0.0.9", 4], ["10.0.0.7", 1]]
    assert snap["latest_alerts"][0]["dst_port"] == 80
    assert snap["latest_alerts"][0]["label"] == "DDoS"


def test_rates_are_summed_over_live_workers() -> None:
    state = DashboardState(clock=lambda: NOW)
    assert state.snapshot()["rates"]["sliding_60s"]["precision"] is None
    state.add_stats(_stats("w1", "sliding_60s", 90, 10, 890, 10))
    state.add_stats(_stats("w2", "sliding_60s", 90, 0, 900, 0))
    state.add_stats(_stats("gone", "sliding_60s", 0, 500, 0, 0, emitted_at=NOW - 600))
    state.add_stats(_stats("w1", "tumbling_10s", 1, 1, 1, 1))  # not a shown window
    rates = state.snapshot()["rates"]["sliding_60s"]
    assert rates["workers"] == 2
    assert rates["precision"] == pytest.approx(180 / 190)
    assert rates["recall"] == pytest.approx(180 / 190)
    assert rates["false_alarm_rate"] == pytest.approx(10 / 1800)
    unlabelled = _stats("w3", "cumulative", None, None, None, None)
    state.add_stats(unlabelled)
    assert state.snapshot()["rates"]["cumulative"]["false_alarm_rate"] is None


def _calibrated(worker: str, window: str, site: str | None, threshold: float, **kw) -> dict:
    record = _stats(worker, window, None, None, None, None)
    record.update(
        threshold=threshold, calibrated=site is not None, calibration_site=site,
        target_alert_rate=0.001 if site else None, alert_rate=0.1, **kw,
    )  # fmt: skip
    return record


def test_threshold_in_force_calibration_and_alert_rate_against_target() -> None:
    state = DashboardState(clock=lambda: NOW)
    old = state.snapshot()["rates"]["sliding_60s"]  # nothing reported yet
    assert old["threshold"] is None and old["calibrated"] is False and old["alert_rate"] is None
    state.add_stats(_stats("legacy", "sliding_60s", None, None, None, None))  # older worker
    legacy = state.snapshot()["rates"]["sliding_60s"]
    assert legacy["thresholds"] == [] and legacy["calibrated"] is False
    assert legacy["alert_rate"] == pytest.approx(10 / 100)
    state = DashboardState(clock=lambda: NOW)
    state.add_stats(_calibrated("w1", "sliding_60s", "lab-a", 0.9993))
    state.add_stats(_calibrated("w2", "sliding_60s", "lab-a", 0.9993, alerts=0))
    rates = state.snapshot()["rates"]["sliding_60s"]
    assert rates["threshold"] == pytest.approx(0.9993) and rates["thresholds"] == [0.9993]
    assert rates["calibrated"] is True and rates["calibration_sites"] == ["lab-a"]
    assert rates["target_alert_rate"] == 0.001
    assert rates["alert_rate"] == pytest.approx(10 / 200)  # summed over workers, not averaged
    state.add_stats(_calibrated("w2", "sliding_60s", None, 0.5))  # w2 lost its calibration
    rates = state.snapshot()["rates"]["sliding_60s"]
    assert rates["threshold"] is None and rates["thresholds"] == [0.5, 0.9993]
    assert rates["calibrated"] is False and rates["calibration_sites"] == ["lab-a"]
    page = (Path(dashboard_static.__file__).parent / "static" / "index.html").read_text()
    assert 'id="alert-rate"' in page and 'id="threshold"' in page and 'id="calibration"' in page


def test_host_state_of_the_workers_and_the_records_that_carry_it() -> None:
    from stream_ids.rolling import RollingStats
    from stream_ids.wire import Stats

    rolling = RollingStats("w1", started_at=NOW - 100)
    rolling.set_host_state(500, expired=40)
    rolling.set_host_state(480, expired=25, evicted=3)
    assert rolling.snapshot(now=NOW)[-1]["restore_seconds"] is None  # no restore yet
    rolling.set_restore(12.5, hosts=62_060, records=142_896)
    records = rolling.snapshot(now=NOW)
    assert {(r["hosts_in_state"], r["hosts_expired"], r["hosts_evicted"]) for r in records} == {
        (480, 65, 3)
    }
    assert {(r["restore_seconds"], r["restored_hosts"], r["restored_records"])
            for r in records} == {(12.5, 62_060, 142_896)}
    decoded = Stats.loads(json.dumps(records[-1]).encode(), serializer="json")
    assert (decoded.restored_hosts, decoded.restored_records) == (62_060, 142_896)
    assert Stats.loads(json.dumps(records[-1]).encode(), serializer="json").hosts_expired == 65
    state = DashboardState(clock=lambda: NOW)
    assert state.snapshot()["rates"]["cumulative"]["hosts_in_state"] is None  # nobody reports
    state.add_stats({**_stats("w1", "cumulative", 1, 0, 1, 0), "hosts_in_state": 480,
                     "hosts_expired": 65, "hosts_evicted": 3})
    state.add_stats({**_stats("w2", "cumulative", 1, 0, 1, 0), "hosts_in_state": 20,
                     "hosts_expired": 5, "hosts_evicted": 0, "restore_seconds": 3.0,
                     "restored_hosts": 10, "restored_records": 40})
    state.add_stats(_stats("old", "cumulative", 1, 0, 1, 0))  # a worker from before #18
    cumulative = state.snapshot()["rates"]["cumulative"]
    assert cumulative["hosts_in_state"] == 500
    assert (cumulative["hosts_expired"], cumulative["hosts_evicted"]) == (70, 3)
    # only w2 restored: its figures, not a sum with workers that never restored
    assert (cumulative["restore_seconds"], cumulative["restored_hosts"],
            cumulative["restored_records"]) == (3.0, 10, 40)
    page = (Path(dashboard_static.__file__).parent / "static" / "index.html").read_text()
    assert 'id="hosts-in-state"' in page and 'id="hosts-restored"' in page
    ids = re.findall(r'id="([^"]+)"', page)
    assert len(ids) == len(set(ids)), "element ids of the page must be unique"


def test_http_endpoints_serve_page_assets_and_state() -> None:
    state = DashboardState()
    state.count_verdicts([NOW])
    httpd = ThreadingHTTPServer(("127.0.0.1", 0), make_handler(state))
    Thread(target=httpd.serve_forever, daemon=True).start()
    base = f"http://127.0.0.1:{httpd.server_address[1]}"
    try:
        with urllib.request.urlopen(base + "/", timeout=5) as response:
            page = response.read().decode()
            assert "default-src 'self'" in response.headers["Content-Security-Policy"]
        assert '<script src="/static/app.js"' in page
        assert "http" not in page.split("<body>")[0].replace("http-equiv", "")  # nothing remote
        for asset in ("app.js", "app.css"):
            with urllib.request.urlopen(f"{base}/static/{asset}", timeout=5) as response:
                assert response.status == 200
        with urllib.request.urlopen(base + "/api/state", timeout=5) as response:
            assert json.loads(response.read())["verdicts_total"] == 1
        with pytest.raises(urllib.error.HTTPError):
            urllib.request.urlopen(base + "/static/../settings.py", timeout=5)
    finally:
        httpd.shutdown()
        httpd.server_close()


def test_cli_registers_dashboard() -> None:
    from stream_ids.cli import build_parser

    args = build_parser().parse_args(["dashboard", "--port", "0", "--from-beginning"])
    assert args.port == 0 and args.from_beginning
