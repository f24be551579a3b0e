"""Replay CICIDS2017 CSVs (any layout the loader reads) into the ``flows`` topic.

Flows are published in timestamp order (a stable sort over all files, so equal timestamps keep
file order) in the canonical schema-1 ``flows`` shape, keyed by source host, by an idempotent
confluent-kafka producer with delivery reports. The producer partitions with
``murmur2_random`` (the Java/aiokafka partitioner) so that the worker's host-window table
changelog lands on the same partition numbers as the flows of each host.

``loop=K`` replays the rows K times; pass *k* shifts every timestamp by *k* times the span of
the data (plus one second) and gives fresh flow ids ``<run>-<k>-<row>``, so a large stream can
be made from the few shared rows while each host's sequence stays in time order.

Layouts without IPs (79-column MachineLearningCVE) have no source host: their flows are keyed
by the synthetic host ``"unknown"`` (the worker scores each of them as its own host, padding
plus itself, as offline scoring does) and a warning says so. Layouts without timestamps get the
time of sending.
"""

from __future__ import annotations

import math
import secrets
import time
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass, field
from os import PathLike
from typing import Any

import numpy as np
import pandas as pd

from stream_ids import wire
from stream_ids.kafka_admin import ensure_topic
from stream_ids.kafka_probe import librdkafka_logger
from stream_ids.schema import FEATURE_NAMES
from stream_ids.settings import Settings
from stream_ids.wire import HOSTLESS

PathArg = str | PathLike[str]
# Micro-batches (host_batch > 1): every open group is sent after this many flows or seconds.
FLUSH_EVERY = 4096
FLUSH_S = 0.05


def producer_config(settings: Settings, **overrides: Any) -> dict[str, Any]:
    """confluent-kafka producer settings tuned for throughput, idempotent, murmur2 partitioning."""
    config = settings.confluent_config()
    config.update(
        {
            "enable.idempotence": True,
            "acks": "all",
            "linger.ms": 20,
            "batch.size": 1_000_000,
            "batch.num.messages": 10_000,
            "compression.type": "lz4",
            "queue.buffering.max.messages": 500_000,
            "queue.buffering.max.kbytes": 1_048_576,
            "partitioner": "murmur2_random",
            "message.timeout.ms": 120_000,
            "logger": librdkafka_logger(),
        }
    )
    config.update(overrides)
    return config


def load_replay_frame(paths: Iterable[PathArg], limit: int | None = None) -> pd.DataFrame:
    """All flows of ``paths`` (float64 features), stably sorted by timestamp (missing last)."""
    from stream_ids.loader import iter_flow_frames

    frames = list(iter_flow_frames(list(paths), dtype=np.float64))
    if not frames:
        raise ValueError("no flows in the given files")
    frame = pd.concat(frames, ignore_index=True) if len(frames) > 1 else frames[0]
    frame = frame.sort_values("timestamp", kind="stable", na_position="last")
    frame = frame.reset_index(drop=True)
    if limit is not None:
        frame = frame.iloc[:limit].reset_index(drop=True)
    return frame


def _optional_int(values: np.ndarray) -> list[int | None]:
    return [None if math.isnan(v) else int(v) for v in values.tolist()]


def _optional_str(series: pd.Series) -> list[str | None]:
    return [value if isinstance(value, str) and value else None for value in series.tolist()]


@dataclass
class PreparedFlows:
    """Column lists of a replay frame, ready to be turned into messages quickly."""

    n: int
    src_ip: list[str]
    src_port: list[int | None]
    dst_ip: list[str | None]
    dst_port: list[int | None]
    protocol: list[int | None]
    timestamp: list[float]  # NaN when the layout has none
    label: list[str | None]
    features: np.ndarray  # (n, 76) float64
    finite_rows: np.ndarray  # (n,) bool
    hostless: int = 0
    span: float = 0.0
    notes: list[str] = field(default_factory=list)


def prepare(frame: pd.DataFrame, labels: bool = True) -> PreparedFlows:
    hosts = _optional_str(frame["src_ip"])
    hostless = sum(host is None for host in hosts)
    src_ip = [host if host is not None else HOSTLESS for host in hosts]
    timestamps = frame["timestamp"].to_numpy(dtype=np.float64)
    finite_times = timestamps[np.isfinite(timestamps)]
    span = float(finite_times.max() - finite_times.min()) if len(finite_times) else 0.0
    features = frame.loc[:, list(FEATURE_NAMES)].to_numpy(dtype=np.float64)
    prepared = PreparedFlows(
        n=len(frame),
        src_ip=src_ip,
        src_port=_optional_int(frame["src_port"].to_numpy(dtype=np.float64)),
        dst_ip=_optional_str(frame["dst_ip"]),
        dst_port=_optional_int(frame["dst_port"].to_numpy(dtype=np.float64)),
        protocol=_optional_int(frame["protocol"].to_numpy(dtype=np.float64)),
        timestamp=timestamps.tolist(),
        label=_optional_str(frame["label"]) if labels else [None] * len(frame),
        features=features,
        finite_rows=np.isfinite(features).all(axis=1),
        hostless=hostless,
        span=span,
    )
    if hostless:
        prepared.notes.append(
            f"{hostless} flows have no source IP (79-column layout?): keyed by the synthetic host "
            f"{HOSTLESS!r}; the worker scores each of them without host history"
        )
    if len(finite_times) < len(timestamps):
        prepared.notes.append(
            f"{len(timestamps) - len(finite_times)} flows have no timestamp: "
            "they carry the time of sending"
        )
    return prepared


def flow_object(
    prepared: PreparedFlows, index: int, flow_id: str, shift: float, now: float
) -> dict[str, Any]:
    """The schema-1 ``flows`` object of row ``index`` in loop pass ``shift``, sent at ``now``."""
    return wire.flow_object(
        flow_id=flow_id,
        src_ip=prepared.src_ip[index],
        src_port=prepared.src_port[index],
        dst_ip=prepared.dst_ip[index],
        dst_port=prepared.dst_port[index],
        protocol=prepared.protocol[index],
        timestamp=flow_timestamp(prepared, index, shift, now),
        produced_at=now,
        label=prepared.label[index],
        features=wire.encode_features(
            prepared.features[index].tolist(), bool(prepared.finite_rows[index])
        ),
    )


# A flow waiting in a host group: (row of the prepared frame, flow id, timestamp, produced_at).
Pending = tuple[int, str, float, float]


def flow_timestamp(prepared: PreparedFlows, index: int, shift: float, now: float) -> float:
    """The flow's event time on the wire: shifted for loop pass *k*; sending time if none."""
    timestamp = prepared.timestamp[index]
    return now if math.isnan(timestamp) else timestamp + shift


def columns_message(
    prepared: PreparedFlows, host: str, group: Sequence[Pending], binary: bool = False
) -> bytes:
    """One schema-3 ``flows`` value (host micro-batch by columns) for ``group``'s flows.

    ``binary``: the features as one ``features_f64`` block (base64 of float64) instead of JSON
    rows of numbers; the same flows, parsed at a fraction of the cost (docs/streaming.md).
    """
    indices = [index for index, _, _, _ in group]
    return wire.encode_columns(
        src_ip=host,
        flow_id=[flow_id for _, flow_id, _, _ in group],
        timestamp=[timestamp for _, _, timestamp, _ in group],
        produced_at=[produced_at for _, _, _, produced_at in group],
        src_port=[prepared.src_port[index] for index in indices],
        dst_ip=[prepared.dst_ip[index] for index in indices],
        dst_port=[prepared.dst_port[index] for index in indices],
        protocol=[prepared.protocol[index] for index in indices],
        label=[prepared.label[index] for index in indices],
        features=prepared.features[indices],
        binary=binary,
    )


@dataclass
class ReplayResult:
    produced: int = 0
    delivered: int = 0
    failed: int = 0
    seconds: float = 0.0
    errors: list[str] = field(default_factory=list)
    notes: list[str] = field(default_factory=list)

    @property
    def rate(self) -> float:
        return self.produced / self.seconds if self.seconds > 0 else 0.0


class Pacer:
    """Sleeps so that message ``i`` (or event time ``t``) is sent no earlier than its slot."""

    def __init__(self, rate: float | None, speedup: float | None) -> None:
        self.rate, self.speedup = rate, speedup
        self.start = time.perf_counter()
        self.first_time: float | None = None

    def wait(self, index: int, event_time: float, poll: Callable[[float], Any]) -> None:
        if self.rate:
            due = self.start + index / self.rate
        elif self.speedup:
            if math.isnan(event_time):
                return
            if self.first_time is None:
                self.first_time = event_time
            due = self.start + (event_time - self.first_time) / self.speedup
        else:
            return
        delay = due - time.perf_counter()
        if delay > 0.002:
            poll(0)
            time.sleep(delay)


def replay(
    paths: Sequence[PathArg],
    settings: Settings,
    *,
    topic: str | None = None,
    rate: float | None = None,
    speedup: float | None = None,
    limit: int | None = None,
    loop: int = 1,
    labels: bool = True,
    id_prefix: str | None = None,
    host_batch: int = 1,
    binary_features: bool = True,
    progress: bool = True,
    create_topic: bool = True,
    producer_overrides: dict[str, Any] | None = None,
    frame: pd.DataFrame | None = None,
) -> ReplayResult:
    """Publish the flows of ``paths`` (or ``frame``) ``loop`` times; returns delivery counts.

    ``host_batch > 1`` sends schema-3 micro-batches: consecutive flows of one host (up to
    ``host_batch``) in one record, by columns (see docs/streaming.md), the features as one
    binary block unless ``binary_features`` is false (JSON rows); the worker accepts every
    schema.
    """
    from confluent_kafka import KafkaException, Producer

    topic = topic or settings.topic_flows
    if frame is None:
        frame = load_replay_frame(paths, limit)
    elif limit is not None:
        frame = frame.iloc[:limit]
    prepared = prepare(frame, labels=labels)
    result = ReplayResult(notes=list(prepared.notes))
    if create_topic:
        ensure_topic(settings, topic)
    producer = Producer(producer_config(settings, **(producer_overrides or {})))
    run = id_prefix if id_prefix is not None else secrets.token_hex(4)
    total = prepared.n * loop

    def delivered(count: int) -> Callable[[Any, Any], None]:
        def on_delivery(error: Any, _message: Any) -> None:
            if error is None:
                result.delivered += count
            else:
                result.failed += count
                if len(result.errors) < 5:
                    result.errors.append(str(error))

        return on_delivery

    single = delivered(1)

    def send(key: bytes, value: bytes, count: int = 1) -> None:
        callback = single if count == 1 else delivered(count)
        while True:
            try:
                producer.produce(topic, value=value, key=key, on_delivery=callback)
                return
            except BufferError:
                producer.poll(0.05)
            except KafkaException as error:  # pragma: no cover - fatal producer errors
                raise RuntimeError(f"producer failed: {error}") from error

    def send_group(host: str, group: list[Pending]) -> None:
        send(host.encode(), columns_message(prepared, host, group, binary_features), len(group))

    bar, task = _progress(progress, total)
    pacer = Pacer(rate, speedup)
    started = time.perf_counter()
    sent = 0
    flushed = time.perf_counter()
    pending: dict[str, list[Pending]] = {}
    try:
        for k in range(loop):
            shift = k * (prepared.span + 1.0)
            for index in range(prepared.n):
                pacer.wait(sent, prepared.timestamp[index] + shift, producer.poll)
                flow_id = f"{run}-{k}-{index}"
                host = prepared.src_ip[index]
                if host_batch == 1:
                    obj = flow_object(prepared, index, flow_id, shift, time.time())
                    send(*wire.encode_flow(obj))
                else:
                    now = time.time()
                    group = pending.setdefault(host, [])
                    group.append((index, flow_id, flow_timestamp(prepared, index, shift, now), now))
                    if len(group) >= host_batch:
                        send_group(host, pending.pop(host))
                sent += 1
                if sent % 2000 == 0:
                    producer.poll(0)
                    if bar is not None:
                        bar.update(task, completed=sent)
                if (
                    host_batch > 1
                    and pending
                    and (sent % FLUSH_EVERY == 0 or time.perf_counter() - flushed > FLUSH_S)
                ):
                    # bounded latency for sparse hosts: flush every group regularly
                    for host_name in list(pending):
                        send_group(host_name, pending.pop(host_name))
                    flushed = time.perf_counter()
        for host_name in list(pending):
            send_group(host_name, pending.pop(host_name))
        remaining = producer.flush(120)
        if remaining:
            result.failed += remaining
            result.errors.append(f"{remaining} messages not delivered before the flush timeout")
    finally:
        if bar is not None:
            bar.update(task, completed=sent)
            bar.stop()
    result.produced = sent
    result.seconds = time.perf_counter() - started
    return result


def _progress(enabled: bool, total: int) -> tuple[Any, Any]:
    if not enabled:
        return None, None
    from rich.console import Console
    from rich.progress import (
        BarColumn,
        MofNCompleteColumn,
        Progress,
        TextColumn,
        TimeRemainingColumn,
    )

    bar = Progress(
        TextColumn("replay"),
        BarColumn(),
        MofNCompleteColumn(),
        TimeRemainingColumn(),
        console=Console(stderr=True),  # stdout stays for results
        transient=False,
    )
    task = bar.add_task("replay", total=total)
    bar.start()
    return bar, task

