"""Prometheus metrics of a worker.

How the worker calls it (one ``WorkerMetrics`` per worker process)::

    from stream_ids.observability import WorkerMetrics, start_metrics_server

    settings = get_settings()
    metrics = WorkerMetrics()                      # the default registry; tests pass their own
    start_metrics_server(settings.metrics_port)   # STREAM_IDS_METRICS_PORT; 0 = disabled

    # in the scoring agent, per batch:
    metrics.count_consumed(len(raw_records))       # every record read from `flows`, bad ones too
    metrics.count_dead_letter("invalid_json")      # per record sent to `flows-dlq` (its reason)
    started = time.perf_counter()
    scores = scorer.score_windows(windows)
    metrics.observe_batch(
        size=len(verdicts),                        # verdicts produced for the batch
        scoring_seconds=time.perf_counter() - started,
        latencies=[v["scored_at"] - v["produced_at"] for v in verdicts],
        alerts=sum(v["is_attack"] for v in verdicts),
    )
    # from the stats agent (sliding 60 s window; None = no labelled flows yet):
    metrics.set_rates(far, precision, recall)
    # periodically (e.g. a Faust timer), per owned partition of `flows`:
    metrics.set_lag(partition, highwater - committed_offset)

Every method is cheap and thread-safe (prometheus-client locks internally), so it may be called
from the event loop or from the scoring thread executor. The names are listed in
``docs/operations.md``.
"""

from __future__ import annotations

import contextlib
import gc
import logging
import math
import threading
import time
from collections.abc import Iterable, Iterator
from typing import Any

import numpy as np
from prometheus_client import (
    REGISTRY,
    CollectorRegistry,
    Counter,
    Gauge,
    Histogram,
    start_http_server,
)
from prometheus_client.core import HistogramMetricFamily, Metric
from prometheus_client.utils import floatToGoString

PREFIX = "stream_ids"
# A garbage collection that stops the worker this long shows in the latency tail
GC_PAUSE_WARN_S = 0.1

log = logging.getLogger(__name__)

BATCH_SIZE_BUCKETS = (1, 2, 4, 8, 16, 32, 64, 128, 256, 512, 1024, 2048, 4096)
SCORING_SECONDS_BUCKETS = (0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0)
LATENCY_SECONDS_BUCKETS = (
    0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0, 30.0, 60.0,
)  # fmt: skip


def _gauge_value(value: float | None) -> float:
    """``None`` (undefined, e.g. precision before any alert) is exported as NaN."""
    return math.nan if value is None else float(value)


class BatchHistogram:
    """A Prometheus histogram observed a whole batch at a time (numpy), exported like
    prometheus-client's ``Histogram`` (``_bucket{le}``, ``_count``, ``_sum``).

    Why: the latency histogram gets one value per flow; ``Histogram.observe`` per value (a lock
    and a bucket search in Python each) was 6.5% of the event loop's GIL samples (py-spy
    ``--gil``, docs/performance.md). A value ``v`` lands in the first bucket with ``v <= le``,
    as in prometheus-client.
    """

    def __init__(
        self, name: str, documentation: str, buckets: Iterable[float], registry: CollectorRegistry
    ) -> None:
        self.name, self.documentation = name, documentation
        self.bounds = np.array(sorted(buckets), dtype=np.float64)
        self.counts = np.zeros(len(self.bounds) + 1, dtype=np.int64)  # the last one: +Inf
        self.total = 0.0
        self.lock = threading.Lock()
        registry.register(self)

    def observe_many(self, values: np.ndarray) -> None:
        if not len(values):
            return
        counts = np.bincount(
            np.searchsorted(self.bounds, values, side="left"), minlength=len(self.counts)
        )
        with self.lock:
            self.counts += counts
            self.total += float(values.sum())

    def collect(self) -> Iterator[Metric]:
        with self.lock:
            cumulative, total = np.cumsum(self.counts).tolist(), self.total
        labels = [floatToGoString(bound) for bound in self.bounds.tolist()] + ["+Inf"]
        yield HistogramMetricFamily(
            self.name,
            self.documentation,
            buckets=list(zip(labels, cumulative, strict=True)),
            sum_value=total,
        )


class WorkerMetrics:
    """The metrics of one worker, registered in ``registry`` (default: the process registry)."""

    def __init__(self, registry: CollectorRegistry | None = None) -> None:
        self.registry = REGISTRY if registry is None else registry
        r = self.registry
        self.flows_consumed = Counter(
            f"{PREFIX}_flows_consumed", "Records read from the flows topic.", registry=r
        )
        self.verdicts = Counter(f"{PREFIX}_verdicts", "Verdicts produced.", registry=r)
        self.alerts = Counter(
            f"{PREFIX}_alerts", "Alerts produced (score >= threshold).", registry=r
        )
        self.dead_letters = Counter(
            f"{PREFIX}_dead_letters",
            "Records sent to the dead-letter topic, by reason.",
            ["reason"],
            registry=r,
        )
        self.batch_size = Histogram(
            f"{PREFIX}_batch_size",
            "Flows per scored batch.",
            buckets=BATCH_SIZE_BUCKETS,
            registry=r,
        )
        self.scoring_seconds = Histogram(
            f"{PREFIX}_scoring_seconds",
            "Seconds the model took to score one batch.",
            buckets=SCORING_SECONDS_BUCKETS,
            registry=r,
        )
        self.latency_seconds = BatchHistogram(
            f"{PREFIX}_latency_seconds",
            "Seconds from a flow's produced_at to its verdict's scored_at.",
            LATENCY_SECONDS_BUCKETS,
            r,
        )
        self.consumer_lag = Gauge(
            f"{PREFIX}_consumer_lag",
            "Records of the flows topic not yet consumed, per owned partition.",
            ["partition"],
            registry=r,
        )
        self.false_alarm_rate = Gauge(
            f"{PREFIX}_false_alarm_rate",
            "Rolling (60 s) FP / (FP + TN); NaN when unknown.",
            registry=r,
        )
        self.precision = Gauge(
            f"{PREFIX}_precision", "Rolling (60 s) TP / (TP + FP); NaN when unknown.", registry=r
        )
        self.recall = Gauge(
            f"{PREFIX}_recall", "Rolling (60 s) TP / (TP + FN); NaN when unknown.", registry=r
        )
        for gauge in (self.false_alarm_rate, self.precision, self.recall):
            gauge.set(math.nan)
        # bounded host state (stream_ids.host_expiry, docs/reliability.md)
        self.hosts_in_state = Gauge(
            f"{PREFIX}_hosts_in_state", "Source hosts whose window this worker keeps.", registry=r
        )
        self.hosts_expired = Counter(
            f"{PREFIX}_hosts_expired",
            "Hosts dropped from state after the host TTL of flow time without a flow.",
            registry=r,
        )
        self.hosts_evicted = Counter(
            f"{PREFIX}_hosts_evicted",
            "Least recently seen hosts dropped from state beyond STREAM_IDS_MAX_HOSTS.",
            registry=r,
        )
        self.restore_seconds = Gauge(
            f"{PREFIX}_state_restore_seconds",
            "Seconds from the last partition assignment to the first batch scored after it "
            "(the changelog restore included).",
            registry=r,
        )
        self.restored_hosts = Gauge(
            f"{PREFIX}_state_restored_hosts",
            "Hosts in state when the first batch after the last partition assignment was scored.",
            registry=r,
        )
        self.restored_records = Gauge(
            f"{PREFIX}_state_restored_records",
            "Changelog records the last restore read (values and tombstones): compaction keeps "
            "it near the restored hosts; far more means the changelog is not being compacted.",
            registry=r,
        )
        self.recovery_seconds = Gauge(
            f"{PREFIX}_state_recovery_seconds",
            "Seconds from the last partition assignment to the end of Faust's changelog "
            "recovery (part of the restore seconds).",
            registry=r,
        )

    def count_consumed(self, n: int = 1) -> None:
        self.flows_consumed.inc(n)

    def observe_batch(
        self,
        size: int,
        scoring_seconds: float,
        latencies: Iterable[float] | np.ndarray = (),
        alerts: int = 0,
    ) -> None:
        """One scored batch: ``size`` verdicts, of which ``alerts`` are alerts; a latency that
        is not finite (a flow without ``produced_at``) is left out, a negative one (clock skew)
        counts as 0."""
        self.batch_size.observe(size)
        self.scoring_seconds.observe(scoring_seconds)
        self.verdicts.inc(size)
        if alerts:
            self.alerts.inc(alerts)
        values = np.asarray(
            latencies if isinstance(latencies, np.ndarray) else list(latencies), dtype=np.float64
        )
        values = values[np.isfinite(values)]
        self.latency_seconds.observe_many(np.maximum(values, 0.0))

    def set_host_state(self, hosts: int, expired: int = 0, evicted: int = 0) -> None:
        """Hosts in state now, and how many were just expired (TTL) or evicted (budget)."""
        self.hosts_in_state.set(hosts)
        if expired:
            self.hosts_expired.inc(expired)
        if evicted:
            self.hosts_evicted.inc(evicted)

    def set_restore(
        self, seconds: float, hosts: int, records: int = 0, recovery_seconds: float | None = None
    ) -> None:
        self.restore_seconds.set(seconds)
        self.restored_hosts.set(hosts)
        self.restored_records.set(records)
        self.recovery_seconds.set(math.nan if recovery_seconds is None else recovery_seconds)

    def count_dead_letter(self, reason: str, n: int = 1) -> None:
        self.dead_letters.labels(reason=reason).inc(n)

    def set_lag(self, partition: int, lag: int | float) -> None:
        self.consumer_lag.labels(partition=str(partition)).set(max(0, lag))

    def forget_partition(self, partition: int) -> None:
        """Drop a revoked partition's lag series so it does not linger after a rebalance."""
        with contextlib.suppress(KeyError):
            self.consumer_lag.remove(str(partition))

    def set_rates(self, far: float | None, precision: float | None, recall: float | None) -> None:
        self.false_alarm_rate.set(_gauge_value(far))
        self.precision.set(_gauge_value(precision))
        self.recall.set(_gauge_value(recall))


class GcPauseLog:
    """Logs each garbage collection that paused the process for ``threshold_s`` or longer.

    Why: the latency runs show rare stalls of ~1.5 s with nothing in the worker log
    (docs/performance.md); a full collection walks every tracked object while every thread
    waits, so a pause is logged with its generation, making such a stall attributable.
    """

    def __init__(self, threshold_s: float = GC_PAUSE_WARN_S) -> None:
        self.threshold_s = threshold_s
        self.started: float | None = None
        self.pauses = 0  # pauses logged, for tests

    def __call__(self, phase: str, info: dict[str, int]) -> None:
        if phase == "start":
            self.started = time.perf_counter()
            return
        if self.started is None:
            return
        pause, self.started = time.perf_counter() - self.started, None
        if pause >= self.threshold_s:
            self.pauses += 1
            log.warning(
                "garbage collection of generation %d paused the worker %.0f ms "
                "(%d objects collected; %d frozen objects not scanned)",
                info.get("generation", -1),
                pause * 1000.0,
                info.get("collected", 0),
                gc.get_freeze_count(),
            )


def watch_gc_pauses(threshold_s: float = GC_PAUSE_WARN_S) -> GcPauseLog:
    """Install a :class:`GcPauseLog` (once per process) and return it."""
    for callback in gc.callbacks:
        if isinstance(callback, GcPauseLog):
            callback.threshold_s = threshold_s
            return callback
    watcher = GcPauseLog(threshold_s)
    gc.callbacks.append(watcher)
    return watcher


def start_metrics_server(
    port: int,
    addr: str = "0.0.0.0",  # noqa: S104 - a worker in a container is scraped from outside
    registry: CollectorRegistry | None = None,
) -> Any | None:
    """Serve ``/metrics`` on ``port`` in a daemon thread; ``port == 0`` disables it (returns None).

    Returns the ``http.server`` instance (call ``.shutdown()`` to stop it).
    """
    if port == 0:
        return None
    result = start_http_server(port, addr=addr, registry=REGISTRY if registry is None else registry)
    # prometheus-client >= 0.17 returns (server, thread); older versions return None.
    return result[0] if isinstance(result, tuple) else result
