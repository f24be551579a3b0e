"""Read output topics (verdicts, alerts, stats, dead letters) with a throw-away consumer.

Used by ``stream-ids alerts``/``stats``/``demo`` and the integration tests. The consumer never
commits (its group id is unique), it assigns every partition explicitly.
"""

from __future__ import annotations

import time
import uuid
from collections.abc import Iterator
from typing import Any

from stream_ids.settings import Settings
from stream_ids.wire import decode_record


def _consumer(settings: Settings) -> Any:
    from confluent_kafka import Consumer

    config = settings.confluent_config()
    config.update(
        {
            "group.id": f"stream-ids-reader-{uuid.uuid4().hex[:12]}",
            "enable.auto.commit": False,
            "auto.offset.reset": "earliest",
            "enable.partition.eof": False,
            "fetch.max.bytes": 52_428_800,
        }
    )
    return Consumer(config)


def end_offsets(settings: Settings, topic: str) -> dict[int, int]:
    """High watermark of every partition of ``topic`` (empty if the topic does not exist)."""
    from confluent_kafka import TopicPartition

    consumer = _consumer(settings)
    try:
        metadata = consumer.list_topics(topic, timeout=10)
        info = metadata.topics.get(topic)
        if info is None or info.error is not None:
            return {}
        return {
            p: consumer.get_watermark_offsets(TopicPartition(topic, p), timeout=10)[1]
            for p in info.partitions
        }
    finally:
        consumer.close()


def read_topic(
    settings: Settings,
    topic: str,
    *,
    start: dict[int, int] | None = None,
    from_end: bool = False,
    follow: bool = False,
    idle_timeout: float = 2.0,
    decode: bool = True,
    deadline: float | None = None,
) -> Iterator[tuple[bytes | None, Any]]:
    """Yield ``(key, value)`` of ``topic``.

    Starts at ``start`` offsets (per partition), else at the beginning (or the end with
    ``from_end``). Without ``follow`` it stops at the high watermarks seen when it started;
    with ``follow`` it runs until the caller stops iterating. Either way it stops once
    ``time.monotonic()`` passes ``deadline`` (when given), also while no record arrives.
    Values are orjson-decoded unless ``decode`` is False.
    """
    from confluent_kafka import OFFSET_BEGINNING, OFFSET_END, TopicPartition

    consumer = _consumer(settings)
    try:
        wait_until = time.monotonic() + 30
        while True:
            info = consumer.list_topics(topic, timeout=10).topics.get(topic)
            if info is not None and info.error is None and info.partitions:
                break
            if not follow and time.monotonic() > wait_until:
                return
            if deadline is not None and time.monotonic() > deadline:
                return
            time.sleep(0.5)
        partitions = sorted(info.partitions)
        default = OFFSET_END if from_end else OFFSET_BEGINNING
        assignment = [
            TopicPartition(topic, p, (start or {}).get(p, default)) for p in partitions
        ]
        consumer.assign(assignment)
        remaining: dict[int, int] = {}
        if not follow:
            for p in partitions:
                low, high = consumer.get_watermark_offsets(TopicPartition(topic, p), timeout=10)
                begin = (start or {}).get(p, high if from_end else low)
                if high > max(begin, low):
                    remaining[p] = high
            if not remaining:
                return
        idle_since = time.monotonic()
        while True:
            if deadline is not None and time.monotonic() > deadline:
                return
            messages = consumer.consume(1000, timeout=0.5)
            if not messages:
                if not follow and time.monotonic() - idle_since > max(idle_timeout, 10.0):
                    return
                continue
            idle_since = time.monotonic()
            for message in messages:
                if message.error() is not None:
                    continue
                value = message.value()
                if decode:
                    value = decode_record(value)
                yield message.key(), value
                if not follow:
                    p = message.partition()
                    if p in remaining and message.offset() + 1 >= remaining[p]:
                        del remaining[p]
            if not follow and not remaining:
                return
    finally:
        consumer.close()


def latest_stats(settings: Settings, topic: str | None = None) -> dict[tuple[str, str], dict]:
    """The latest record per (worker, window) on the stats topic."""
    latest: dict[tuple[str, str], dict] = {}
    for _key, value in read_topic(settings, topic or settings.topic_stats):
        if isinstance(value, dict) and "worker" in value and "window" in value:
            key = (value["worker"], value["window"])
            if key not in latest or value.get("emitted_at", 0) >= latest[key].get("emitted_at", 0):
                latest[key] = value
    return latest
