"""A background thread that reads ``verdicts``, ``alerts`` and ``stats`` into a DashboardState.

Where it starts reading: for every partition, the first record produced within the last
``lookback_s`` seconds (``offsets_for_times``), or the end of the partition when it holds
nothing that recent; ``lookback_s=None`` reads from the beginning. Partitions are assigned
directly (no consumer-group rebalance to wait for) and re-discovered every few seconds, so
topics created after the dashboard started are picked up too. The consumer has its own unique
group id and never commits, so it never disturbs the workers or any SOC consumer group.
"""

from __future__ import annotations

import logging
import threading
import time
import uuid
from collections import defaultdict
from typing import Any

from confluent_kafka import OFFSET_BEGINNING, Consumer, KafkaError, TopicPartition

from stream_ids.dashboard.state import DashboardState
from stream_ids.wire import decode_record

log = logging.getLogger(__name__)

DISCOVER_EVERY_S = 3.0
MAX_PARSED_ALERTS = 50  # per poll: only the newest alerts are parsed for the table


class KafkaFeed(threading.Thread):
    def __init__(
        self,
        config: dict[str, Any],
        state: DashboardState,
        *,
        verdicts_topic: str,
        alerts_topic: str,
        stats_topic: str,
        lookback_s: float | None = 600.0,
        group_id: str | None = None,
    ) -> None:
        super().__init__(name="dashboard-kafka-feed", daemon=True)
        self.state = state
        self.topics = {"verdicts": verdicts_topic, "alerts": alerts_topic, "stats": stats_topic}
        self.lookback_s = lookback_s
        self.group_id = group_id or f"stream-ids-dashboard-{uuid.uuid4().hex[:12]}"
        self._config = {
            **config,
            "group.id": self.group_id,
            "enable.auto.commit": False,
            "enable.auto.offset.store": False,
            "auto.offset.reset": "latest",
            "client.id": "stream-ids-dashboard",
        }
        self._stopping = threading.Event()
        self._assigned: set[tuple[str, int]] = set()

    def stop(self) -> None:
        self._stopping.set()

    # -- partition discovery -------------------------------------------------------------
    def _discover(self, consumer: Consumer) -> None:
        try:
            metadata = consumer.list_topics(timeout=5)
        except Exception as error:  # KafkaException: broker unreachable
            self.state.set_broker(False, str(error), [])
            return
        found = [t for t in self.topics.values() if t in metadata.topics]
        self.state.set_broker(True, None, found)
        new = [
            TopicPartition(topic, partition)
            for topic in found
            if metadata.topics[topic].error is None
            for partition in metadata.topics[topic].partitions
            if (topic, partition) not in self._assigned
        ]
        if not new:
            return
        consumer.incremental_assign(self._start_offsets(consumer, new))
        self._assigned.update((tp.topic, tp.partition) for tp in new)
        log.info("dashboard reading %d new partition(s)", len(new))

    def _start_offsets(self, consumer: Consumer, partitions: list[TopicPartition]) -> list[Any]:
        if self.lookback_s is None:
            return [TopicPartition(tp.topic, tp.partition, OFFSET_BEGINNING) for tp in partitions]
        ends = {
            (tp.topic, tp.partition): consumer.get_watermark_offsets(tp, timeout=5)[1]
            for tp in partitions
        }
        since_ms = int((time.time() - self.lookback_s) * 1000)
        query = [TopicPartition(tp.topic, tp.partition, since_ms) for tp in partitions]
        found = consumer.offsets_for_times(query, timeout=10)
        return [
            TopicPartition(
                tp.topic,
                tp.partition,
                tp.offset if tp.offset >= 0 else ends[(tp.topic, tp.partition)],
            )
            for tp in found
        ]

    # -- the loop ------------------------------------------------------------------------
    def run(self) -> None:
        consumer = Consumer(self._config)
        try:
            next_discovery = 0.0
            while not self._stopping.is_set():
                if time.monotonic() >= next_discovery:
                    self._discover(consumer)
                    next_discovery = time.monotonic() + DISCOVER_EVERY_S
                if not self._assigned:
                    self._stopping.wait(0.5)
                    continue
                messages = consumer.consume(num_messages=10_000, timeout=0.5)
                if messages:
                    self._fold(messages)
        except Exception:
            log.exception("dashboard Kafka feed stopped")
            self.state.set_broker(False, "feed stopped; see the log", [])
        finally:
            consumer.close()

    def _fold(self, messages: list[Any]) -> None:
        by_topic: dict[str, list[Any]] = defaultdict(list)
        for message in messages:
            error = message.error()
            if error is not None:
                if error.code() != KafkaError._PARTITION_EOF:
                    log.warning("dashboard consumer: %s", error)
                continue
            by_topic[message.topic()].append(message)
        now = time.time()

        def when(message: Any) -> float:
            kind, millis = message.timestamp()
            return millis / 1000.0 if kind and millis > 0 else now

        verdicts = by_topic.get(self.topics["verdicts"], [])
        if verdicts:
            self.state.count_verdicts(when(m) for m in verdicts)
        alerts = by_topic.get(self.topics["alerts"], [])
        if alerts:
            self.state.count_alerts(
                (when(m), (m.key() or b"?").decode("utf-8", "replace")) for m in alerts
            )
            parsed = (_parse(m.value()) for m in alerts[-MAX_PARSED_ALERTS:])
            self.state.add_alert_records(r for r in parsed if r)
        for message in by_topic.get(self.topics["stats"], []):
            record = _parse(message.value())
            if record:
                self.state.add_stats(record)


def _parse(value: bytes | None) -> dict[str, Any]:
    return decode_record(value) or {}
