"""What the dashboard shows, folded from the ``verdicts``, ``alerts`` and ``stats`` topics.

Pure and thread-safe: the Kafka thread feeds it, HTTP handler threads take ``snapshot()``s.
Flow and alert counts are bucketed by the Kafka message timestamp (the worker's produce time,
which is when the verdict was made), so counts read back from history land where they belong.
"""

from __future__ import annotations

import math
import threading
import time
from collections import Counter, deque
from collections.abc import Callable, Iterable, Mapping
from typing import Any

STATS_WINDOWS = ("sliding_60s", "cumulative")
CONFUSION = ("tp", "fp", "tn", "fn")


def _ratio(numerator: int, denominator: int) -> float | None:
    return numerator / denominator if denominator else None


def _finite(value: Any) -> float | None:
    try:
        number = float(value)
    except (TypeError, ValueError):
        return None
    return number if math.isfinite(number) else None


def _host_state(records: list[dict[str, Any]]) -> dict[str, Any]:
    """Hosts kept in state by the reporting workers, and expired / evicted since they started
    (``hosts_in_state`` is ``None`` when no worker reports it: workers older than #18)."""
    kept = [int(r["hosts_in_state"]) for r in records
            if isinstance(r.get("hosts_in_state"), int | float)]
    restored = [r for r in records if isinstance(r.get("restore_seconds"), int | float)]
    return {
        "hosts_in_state": sum(kept) if kept else None,
        "hosts_expired": sum(int(r.get("hosts_expired") or 0) for r in records),
        "hosts_evicted": sum(int(r.get("hosts_evicted") or 0) for r in records),
        # the slowest worker's last restore, and what all of them restored
        "restore_seconds": max(float(r["restore_seconds"]) for r in restored) if restored else None,
        "restored_hosts": sum(int(r.get("restored_hosts") or 0) for r in restored),
        "restored_records": sum(int(r.get("restored_records") or 0) for r in restored),
    }


def _threshold_in_force(records: list[dict[str, Any]]) -> dict[str, Any]:
    """The alert threshold the reporting workers judge with, and their site calibration.

    ``threshold`` and ``target_alert_rate`` are ``None`` unless every worker that says agrees
    (``thresholds`` lists them all); ``calibrated`` is true when every reporting worker runs a
    site calibration. Records of workers older than these fields carry none of them.
    """
    thresholds = sorted({t for r in records if (t := _finite(r.get("threshold"))) is not None})
    targets = sorted(
        {t for r in records if (t := _finite(r.get("target_alert_rate"))) is not None}
    )
    sites = sorted({str(r["calibration_site"]) for r in records if r.get("calibration_site")})
    known = [r for r in records if "calibrated" in r]
    return {
        "threshold": thresholds[0] if len(thresholds) == 1 else None,
        "thresholds": thresholds,
        "calibrated": bool(known) and all(r.get("calibrated") is True for r in known),
        "calibration_sites": sites,
        "target_alert_rate": targets[0] if len(targets) == 1 else None,
    }


class DashboardState:
    """Rolling per-second counts, totals, the latest alerts, the noisiest hosts and rates."""

    def __init__(
        self,
        history_s: int = 300,
        bin_s: int = 2,
        rate_window_s: int = 10,
        max_alerts: int = 50,
        top_hosts: int = 10,
        stale_worker_s: float = 120.0,
        clock: Callable[[], float] = time.time,
    ) -> None:
        self.history_s = history_s
        self.bin_s = bin_s
        self.rate_window_s = rate_window_s
        self.top_hosts = top_hosts
        self.stale_worker_s = stale_worker_s
        self._clock = clock
        self._lock = threading.Lock()
        self._flows: Counter[int] = Counter()  # epoch second -> verdicts
        self._alerts: Counter[int] = Counter()  # epoch second -> alerts
        self._hosts: Counter[str] = Counter()
        self._latest: deque[dict[str, Any]] = deque(maxlen=max_alerts)
        self._stats: dict[tuple[str, str], dict[str, Any]] = {}
        self.verdicts_total = 0
        self.alerts_total = 0
        self.stats_total = 0
        self.last_record_at: float | None = None
        self.broker: dict[str, Any] = {"connected": False, "error": None, "topics": []}

    # -- feeding -------------------------------------------------------------------------
    def count_verdicts(self, times: Iterable[float]) -> None:
        with self._lock:
            n = 0
            for t in times:
                self._flows[int(t)] += 1
                n += 1
            self.verdicts_total += n
            if n:
                self.last_record_at = self._clock()
            self._prune()

    def count_alerts(self, times_hosts: Iterable[tuple[float, str]]) -> None:
        with self._lock:
            n = 0
            for t, host in times_hosts:
                self._alerts[int(t)] += 1
                self._hosts[host] += 1
                n += 1
            self.alerts_total += n
            if n:
                self.last_record_at = self._clock()
            self._prune()

    def add_alert_records(self, records: Iterable[Mapping[str, Any]]) -> None:
        """The newest alerts for the table (only the fields shown are kept)."""
        with self._lock:
            for record in records:
                self._latest.append(
                    {
                        "scored_at": _finite(record.get("scored_at")),
                        "timestamp": _finite(record.get("timestamp")),
                        "src_ip": str(record.get("src_ip", "")),
                        "dst_ip": str(record.get("dst_ip", "")),
                        "dst_port": record.get("dst_port"),
                        "score": _finite(record.get("score")),
                        "label": record.get("label"),
                    }
                )

    def add_stats(self, record: Mapping[str, Any]) -> None:
        window = record.get("window")
        if window not in STATS_WINDOWS:
            return
        with self._lock:
            self._stats[(str(record.get("worker", "?")), str(window))] = dict(record)
            self.stats_total += 1
            self.last_record_at = self._clock()

    def set_broker(self, connected: bool, error: str | None, topics: list[str]) -> None:
        with self._lock:
            self.broker = {"connected": connected, "error": error, "topics": sorted(topics)}

    # -- reading -------------------------------------------------------------------------
    def _prune(self) -> None:
        oldest = int(self._clock()) - self.history_s - self.bin_s
        for counts in (self._flows, self._alerts):
            if len(counts) > self.history_s + 2 * self.bin_s:
                for second in [s for s in counts if s < oldest]:
                    del counts[second]

    def _rates(self, window: str, now: float) -> dict[str, Any]:
        records = [
            r
            for (_, w), r in self._stats.items()
            if w == window and now - (_finite(r.get("emitted_at")) or now) <= self.stale_worker_s
        ]
        sums = dict.fromkeys(CONFUSION, 0)
        labelled = False
        for record in records:
            if all(isinstance(record.get(k), int | float) for k in CONFUSION):
                labelled = True
                for k in CONFUSION:
                    sums[k] += int(record[k])
        tp, fp, tn, fn = (sums[k] for k in CONFUSION)
        flows = sum(int(r.get("flows") or 0) for r in records)
        alerts = sum(int(r.get("alerts") or 0) for r in records)
        return {
            "workers": len(records),
            "flows": flows,
            "alerts": alerts,
            **sums,
            "labelled": labelled,
            "false_alarm_rate": _ratio(fp, fp + tn) if labelled else None,
            "precision": _ratio(tp, tp + fp) if labelled else None,
            "recall": _ratio(tp, tp + fn) if labelled else None,
            "alert_rate": _ratio(alerts, flows),
            **_threshold_in_force(records),
            **_host_state(records),
        }

    def snapshot(self) -> dict[str, Any]:
        now = self._clock()
        with self._lock:
            current = int(now) // self.bin_s * self.bin_s  # start of the bin still filling
            start = current - self.history_s
            series = []
            for bin_start in range(start, current, self.bin_s):
                flows = sum(self._flows.get(s, 0) for s in range(bin_start, bin_start + self.bin_s))
                alerts = sum(
                    self._alerts.get(s, 0) for s in range(bin_start, bin_start + self.bin_s)
                )
                series.append([bin_start, flows / self.bin_s, alerts / self.bin_s])
            last = int(now)
            window = range(last - self.rate_window_s, last)
            flows_rate = sum(self._flows.get(s, 0) for s in window) / self.rate_window_s
            alerts_rate = sum(self._alerts.get(s, 0) for s in window) / self.rate_window_s
            return {
                "now": now,
                "verdicts_total": self.verdicts_total,
                "alerts_total": self.alerts_total,
                "stats_total": self.stats_total,
                "flows_per_s": flows_rate,
                "alerts_per_s": alerts_rate,
                "rate_window_s": self.rate_window_s,
                "series": {"bin_s": self.bin_s, "points": series},
                "rates": {w: self._rates(w, now) for w in STATS_WINDOWS},
                "latest_alerts": list(reversed(self._latest)),
                "top_hosts": [[h, n] for h, n in self._hosts.most_common(self.top_hosts)],
                "last_record_at": self.last_record_at,
                "broker": dict(self.broker),
            }
