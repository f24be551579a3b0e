"""The worker's output messages: ``verdicts`` (and ``alerts``) and ``stats``.

The hot path writes plain dicts through orjson (constructing a :class:`faust.Record` per flow
costs more than scoring it); the Record classes document the fields, and
``Verdict(**decode_record(value))`` reads one back. Every reader of these topics (``alerts``,
``stats``, the dashboard, tests) decodes through :func:`decode_record`.
"""

from __future__ import annotations

from typing import Any

import faust
import orjson

from stream_ids.wire.columns import FlowColumns


def verdict_object(
    flows: FlowColumns,
    index: int,
    *,
    score: float,
    is_attack: bool,
    window_length: int,
    scored_at: float,
    threshold: float,
    model_version: str,
) -> dict[str, Any]:
    """The ``verdicts`` value of flow ``index`` of ``flows`` (an alert is the same value)."""
    return {
        "flow_id": flows.flow_id[index],
        "src_ip": flows.src_ip[index],
        "dst_ip": flows.dst_ip[index],
        "dst_port": flows.dst_port[index],
        "protocol": flows.protocol[index],
        "timestamp": flows.timestamp[index],
        "produced_at": flows.produced_at[index],
        "scored_at": scored_at,
        "score": score,
        "is_attack": is_attack,
        "threshold": threshold,
        "model_version": model_version,
        "label": flows.label[index],
        "window_length": window_length,
    }


def encode_record(record: dict[str, Any]) -> bytes:
    """The bytes of a verdict, alert or stats record (one JSON object)."""
    return orjson.dumps(record)


def decode_record(value: bytes | None) -> dict[str, Any] | None:
    """A verdict, alert, stats or dead-letter value as a dict; None if it is no JSON object."""
    if not value:
        return None
    try:
        record = orjson.loads(value)
    except orjson.JSONDecodeError:
        return None
    return record if isinstance(record, dict) else None


class Verdict(faust.Record, serializer="json"):
    """A ``verdicts`` (and ``alerts``) value: one per input flow."""

    flow_id: str
    src_ip: str
    timestamp: float
    scored_at: float
    score: float
    is_attack: bool
    threshold: float
    model_version: str
    window_length: int
    dst_ip: str | None = None
    dst_port: int | None = None
    protocol: int | None = None
    produced_at: float | None = None
    label: str | None = None


class Stats(faust.Record, serializer="json"):
    """A ``stats`` value: rolling statistics of one worker (made by
    :meth:`stream_ids.rolling.Counts.record`, completed by :meth:`RollingStats.snapshot`)."""

    worker: str
    window: str
    window_start: float
    window_end: float
    flows: int
    alerts: int
    emitted_at: float
    tp: int | None = None
    fp: int | None = None
    tn: int | None = None
    fn: int | None = None
    false_alarm_rate: float | None = None
    precision: float | None = None
    recall: float | None = None
    # alerts / flows of the window, and the threshold in force when the record was emitted:
    # a site calibration's (calibrated, its site and target alert rate) or the model's own
    alert_rate: float | None = None
    threshold: float | None = None
    calibrated: bool = False
    calibration_site: str | None = None
    target_alert_rate: float | None = None
    # bounded host state (#18): hosts this worker keeps, and dropped since it started
    hosts_in_state: int | None = None
    hosts_expired: int = 0
    hosts_evicted: int = 0
    # the worker's last host-state restore (None: none since it started)
    restore_seconds: float | None = None
    restored_hosts: int | None = None
    restored_records: int | None = None
