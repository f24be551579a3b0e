"""The worker metrics, checked by scraping the Prometheus text format."""

from __future__ import annotations

import math
import re
import urllib.request

import numpy as np
import pytest
from prometheus_client import CollectorRegistry, generate_latest
from prometheus_client.parser import text_string_to_metric_families

from stream_ids.observability import WorkerMetrics, start_metrics_server


def _samples(text: str) -> dict[tuple[str, tuple[tuple[str, str], ...]], float]:
    return {
        (sample.name, tuple(sorted(sample.labels.items()))): sample.value
        for family in text_string_to_metric_families(text)
        for sample in family.samples
    }


def test_metrics_in_text_format() -> None:
    registry = CollectorRegistry()
    metrics = WorkerMetrics(registry)
    metrics.count_consumed(5)
    metrics.count_dead_letter("invalid_json")
    metrics.count_dead_letter("invalid_json")
    metrics.count_dead_letter("non_finite")
    metrics.observe_batch(4, 0.02, latencies=[0.1, 0.2, 0.3, float("nan")], alerts=3)
    metrics.set_lag(3, 17)
    metrics.set_lag(5, -1)  # a stale high watermark never exports negative lag
    metrics.set_rates(0.01, 0.99, None)

    s = _samples(generate_latest(registry).decode())
    assert s[("stream_ids_flows_consumed_total", ())] == 5
    assert s[("stream_ids_verdicts_total", ())] == 4
    assert s[("stream_ids_alerts_total", ())] == 3
    assert s[("stream_ids_dead_letters_total", (("reason", "invalid_json"),))] == 2
    assert s[("stream_ids_dead_letters_total", (("reason", "non_finite"),))] == 1
    assert s[("stream_ids_batch_size_count", ())] == 1
    assert s[("stream_ids_batch_size_sum", ())] == 4
    assert s[("stream_ids_scoring_seconds_sum", ())] == 0.02
    assert s[("stream_ids_latency_seconds_count", ())] == 3  # NaN latency skipped
    assert s[("stream_ids_latency_seconds_bucket", (("le", "0.25"),))] == 2
    assert s[("stream_ids_consumer_lag", (("partition", "3"),))] == 17
    assert s[("stream_ids_consumer_lag", (("partition", "5"),))] == 0
    assert s[("stream_ids_false_alarm_rate", ())] == 0.01
    assert s[("stream_ids_precision", ())] == 0.99
    assert math.isnan(s[("stream_ids_recall", ())])

    metrics.forget_partition(3)
    metrics.forget_partition(42)  # unknown: no error
    s = _samples(generate_latest(registry).decode())
    assert ("stream_ids_consumer_lag", (("partition", "3"),)) not in s


def test_metrics_server_serves_and_zero_disables() -> None:
    assert start_metrics_server(0) is None
    registry = CollectorRegistry()
    WorkerMetrics(registry).count_consumed(2)
    server = start_metrics_server(_free_port(), addr="127.0.0.1", registry=registry)
    try:
        port = server.server_address[1]
        with urllib.request.urlopen(f"http://127.0.0.1:{port}/metrics", timeout=5) as response:
            text = response.read().decode()
        assert _samples(text)[("stream_ids_flows_consumed_total", ())] == 2
    finally:
        server.shutdown()
        server.server_close()


def test_metrics_port_setting(monkeypatch) -> None:
    from stream_ids.settings import Settings

    assert Settings().metrics_port == 9464
    monkeypatch.setenv("STREAM_IDS_METRICS_PORT", "0")
    assert Settings().metrics_port == 0


def _free_port() -> int:
    import socket

    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def test_batch_latency_histogram_matches_prometheus_histogram() -> None:
    """The numpy histogram exports what prometheus-client's per-value observe would."""
    from prometheus_client import Histogram

    from stream_ids.observability import LATENCY_SECONDS_BUCKETS

    rng = np.random.default_rng(7)
    batches = [
        rng.exponential(0.3, 500),
        np.array(LATENCY_SECONDS_BUCKETS),  # exactly on every bound: counted in that bucket
        np.array([-0.2, 0.0, 61.0, math.inf, math.nan]),  # skew -> 0; +Inf bucket; left out
        np.array([]),
    ]
    registry = CollectorRegistry()
    metrics = WorkerMetrics(registry)
    reference_registry = CollectorRegistry()
    reference = Histogram(
        "stream_ids_latency_seconds",
        "reference",
        buckets=LATENCY_SECONDS_BUCKETS,
        registry=reference_registry,
    )
    for batch in batches:
        metrics.observe_batch(len(batch), 0.01, latencies=batch)
        for value in batch.tolist():
            if math.isfinite(value):
                reference.observe(max(0.0, value))
    ours = _samples(generate_latest(registry).decode())
    theirs = _samples(generate_latest(reference_registry).decode())
    wanted = {
        key: value
        for key, value in theirs.items()
        if key[0] in ("stream_ids_latency_seconds_bucket", "stream_ids_latency_seconds_count")
    }
    assert len(wanted) == len(LATENCY_SECONDS_BUCKETS) + 2
    assert {key: ours[key] for key in wanted} == wanted
    assert ours[("stream_ids_latency_seconds_sum", ())] == pytest.approx(
        theirs[("stream_ids_latency_seconds_sum", ())]
    )


def test_a_long_garbage_collection_is_logged(caplog: pytest.LogCaptureFixture) -> None:
    import gc

    from stream_ids.observability import watch_gc_pauses

    watcher = watch_gc_pauses(threshold_s=0.0)  # every collection counts as long here
    try:
        assert watch_gc_pauses(threshold_s=0.0) is watcher  # installed once
        cycles = []
        for _ in range(1000):
            node: list = []
            node.append(node)  # a reference cycle: only the collector frees it
            cycles.append(node)
        del cycles, node
        with caplog.at_level("WARNING", logger="stream_ids.observability"):
            gc.collect()
        assert watcher.pauses >= 1
        message = [r.getMessage() for r in caplog.records if "garbage collection" in r.getMessage()]
        pattern = r"generation 2 paused the worker \d+ ms \((\d+) objects collected"
        found = re.search(pattern, message[-1])
        assert found is not None and int(found.group(1)) >= 1000  # our cycles, maybe more
    finally:
        gc.callbacks.remove(watcher)
