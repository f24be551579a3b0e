"""Rolling detection statistics of one worker (pure logic; the stats agent publishes them).

Verdicts are counted into one-second buckets of processing time (``scored_at``). From those:

* ``tumbling_10s``: the 10-second window aligned to multiples of 10 s that holds *now* (partial),
  plus, once, every window that closed since the last emission (final counts);
* ``sliding_60s``: the last 60 seconds up to *now*;
* ``cumulative``: everything since the worker started.

Confusion counts (tp/fp/tn/fn) count only flows that carried a ground-truth label; they are
``None`` when none did. ``false_alarm_rate = fp / (fp + tn)``, ``precision = tp / (tp + fp)``,
``recall = tp / (tp + fn)``, ``None`` when the denominator is zero. ``alert_rate = alerts /
flows`` (``None`` without flows), beside the threshold in force when the record was emitted:
``threshold``, ``calibrated``, ``calibration_site`` and ``target_alert_rate`` (a site
calibration's, ``None`` when uncalibrated; :mod:`stream_ids.calibration`).
"""

from __future__ import annotations

import math
import time
from collections import deque
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

import numpy as np

if TYPE_CHECKING:
    from stream_ids.calibration import Calibration

TUMBLING_S = 10
SLIDING_S = 60


@dataclass(slots=True)
class Counts:
    flows: int = 0
    alerts: int = 0
    labelled: int = 0
    tp: int = 0
    fp: int = 0
    tn: int = 0
    fn: int = 0

    def add(self, other: Counts) -> None:
        self.flows += other.flows
        self.alerts += other.alerts
        self.labelled += other.labelled
        self.tp += other.tp
        self.fp += other.fp
        self.tn += other.tn
        self.fn += other.fn

    @classmethod
    def of_arrays(cls, predicted: np.ndarray, attack: np.ndarray, labelled: np.ndarray) -> Counts:
        """Counts of one batch from boolean arrays: the verdicts, the truth (read only where
        ``labelled``), which flows carried a label."""
        predicted, attack = predicted.astype(bool), attack.astype(bool)
        known = labelled.astype(bool)
        return cls(
            flows=len(predicted),
            alerts=int(predicted.sum()),
            labelled=int(known.sum()),
            tp=int((known & attack & predicted).sum()),
            fn=int((known & attack & ~predicted).sum()),
            fp=int((known & ~attack & predicted).sum()),
            tn=int((known & ~attack & ~predicted).sum()),
        )

    @classmethod
    def of(cls, predicted: list[bool], truth: list[bool | None]) -> Counts:
        """:meth:`of_arrays` for lists: ``predicted[i]`` the verdict, ``truth[i]`` None when
        unlabelled."""
        return cls.of_arrays(
            np.array(predicted, dtype=bool),
            np.array([bool(actual) for actual in truth], dtype=bool),
            np.array([actual is not None for actual in truth], dtype=bool),
        )

    def record(
        self, worker: str, window: str, start: float, end: float, now: float
    ) -> dict[str, Any]:
        labelled = self.labelled > 0
        return {
            "worker": worker,
            "window": window,
            "window_start": start,
            "window_end": end,
            "flows": self.flows,
            "alerts": self.alerts,
            "tp": self.tp if labelled else None,
            "fp": self.fp if labelled else None,
            "tn": self.tn if labelled else None,
            "fn": self.fn if labelled else None,
            "false_alarm_rate": _ratio(self.fp, self.fp + self.tn) if labelled else None,
            "precision": _ratio(self.tp, self.tp + self.fp) if labelled else None,
            "recall": _ratio(self.tp, self.tp + self.fn) if labelled else None,
            "alert_rate": _ratio(self.alerts, self.flows),
            "emitted_at": now,
        }


def _ratio(numerator: int, denominator: int) -> float | None:
    return numerator / denominator if denominator else None


class RollingStats:
    """Accumulates batch counts; :meth:`snapshot` returns the ``stats`` records to publish."""

    def __init__(self, worker: str, started_at: float | None = None) -> None:
        self.worker = worker
        self.started_at = time.time() if started_at is None else started_at
        self.cumulative = Counts()
        # (second, counts), ascending
        self._buckets: deque[tuple[int, Counts]] = deque()
        self._last_emitted_tumbling: int | None = None  # start of the last window emitted
        # the threshold in force and the site calibration that set it (None: the model's own)
        self.threshold: float | None = None
        self.calibration_site: str | None = None
        self.target_alert_rate: float | None = None
        # bounded host state (#18): hosts kept now, and expired / evicted since start
        self.hosts_in_state: int | None = None
        self.hosts_expired = 0
        self.hosts_evicted = 0
        # the last restore of the host state (#18): seconds from the partition assignment to
        # the first batch, hosts and changelog records restored (None until one happened)
        self.restore_seconds: float | None = None
        self.restored_hosts: int | None = None
        self.restored_records: int | None = None

    def set_restore(self, seconds: float, hosts: int, records: int) -> None:
        """The host state was restored after a (re)assignment."""
        self.restore_seconds = float(seconds)
        self.restored_hosts = int(hosts)
        self.restored_records = int(records)

    def set_host_state(self, hosts: int, expired: int = 0, evicted: int = 0) -> None:
        """Hosts whose window this worker keeps now, and how many were just dropped."""
        self.hosts_in_state = int(hosts)
        self.hosts_expired += int(expired)
        self.hosts_evicted += int(evicted)

    def set_threshold(self, threshold: float, calibration: Calibration | None = None) -> None:
        """The threshold the verdicts are judged with from now on, and its calibration."""
        self.threshold = float(threshold)
        self.calibration_site = None if calibration is None else calibration.site
        self.target_alert_rate = None if calibration is None else calibration.target_alert_rate

    def threshold_fields(self) -> dict[str, Any]:
        return {
            "threshold": self.threshold,
            "calibrated": self.calibration_site is not None,
            "calibration_site": self.calibration_site,
            "target_alert_rate": self.target_alert_rate,
        }

    def add(self, counts: Counts, at: float | None = None) -> None:
        second = math.floor(time.time() if at is None else at)
        self.cumulative.add(counts)
        if self._buckets and self._buckets[-1][0] >= second:  # same second (or clock went back)
            self._buckets[-1][1].add(counts)
        else:
            bucket = Counts()
            bucket.add(counts)
            self._buckets.append((second, bucket))

    def _sum(self, start: float, end: float) -> Counts:
        total = Counts()
        for second, counts in self._buckets:
            if start <= second < end:
                total.add(counts)
        return total

    def snapshot(self, now: float | None = None) -> list[dict[str, Any]]:
        now = time.time() if now is None else now
        current = math.floor(now / TUMBLING_S) * TUMBLING_S
        records: list[dict[str, Any]] = []
        # Closed tumbling windows not yet published in their final state.
        first = self._last_emitted_tumbling
        if first is not None:
            for start in range(first, current, TUMBLING_S):
                counts = self._sum(start, start + TUMBLING_S)
                if counts.flows or start == first:
                    records.append(
                        counts.record(self.worker, "tumbling_10s", start, start + TUMBLING_S, now)
                    )
        records.append(
            self._sum(current, current + TUMBLING_S).record(
                self.worker, "tumbling_10s", current, current + TUMBLING_S, now
            )
        )
        self._last_emitted_tumbling = current
        records.append(
            self._sum(now - SLIDING_S, now + 1).record(
                self.worker, "sliding_60s", now - SLIDING_S, now, now
            )
        )
        records.append(
            self.cumulative.record(self.worker, "cumulative", self.started_at, now, now)
        )
        threshold = self.threshold_fields()
        hosts = {"hosts_in_state": self.hosts_in_state, "hosts_expired": self.hosts_expired,
                 "hosts_evicted": self.hosts_evicted, "restore_seconds": self.restore_seconds,
                 "restored_hosts": self.restored_hosts,
                 "restored_records": self.restored_records}
        for record in records:
            record.update(threshold)
            record.update(hosts)
        horizon = min(now - SLIDING_S, current) - 1
        while self._buckets and self._buckets[0][0] < horizon:
            self._buckets.popleft()
        return records
