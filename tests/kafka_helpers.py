"""Small helpers for integration tests against a real Kafka broker (confluent-kafka)."""

from __future__ import annotations

import contextlib
import time
from collections.abc import Callable, Iterable
from typing import Any

import orjson
from confluent_kafka import Consumer, KafkaException, Producer
from confluent_kafka.admin import AdminClient, NewTopic


def create_topic(bootstrap: str, name: str, partitions: int = 1, **config: str) -> None:
    """Create ``name`` and wait until the broker reports it with all its partitions."""
    admin = AdminClient({"bootstrap.servers": bootstrap})
    futures = admin.create_topics(
        [NewTopic(name, num_partitions=partitions, replication_factor=1, config=config)]
    )
    for future in futures.values():
        future.result(timeout=30)
    deadline = time.monotonic() + 30
    while time.monotonic() < deadline:
        metadata = admin.list_topics(topic=name, timeout=5)
        topic = metadata.topics.get(name)
        if topic is not None and topic.error is None and len(topic.partitions) == partitions:
            return
        time.sleep(0.2)
    raise TimeoutError(f"topic {name} did not appear with {partitions} partitions")


def delete_topics(bootstrap: str, names: Iterable[str]) -> None:
    admin = AdminClient({"bootstrap.servers": bootstrap})
    names = list(names)
    if names:
        for future in admin.delete_topics(names, operation_timeout=30).values():
            with contextlib.suppress(KafkaException):  # already gone: nothing to clean up
                future.result(timeout=30)


def produce_json(
    bootstrap: str, topic: str, records: Iterable[tuple[str | bytes | None, Any]]
) -> int:
    """Produce (key, value) pairs; dict values are JSON-encoded, bytes are sent as they are.

    Waits for every delivery report and raises if any record failed.
    """
    producer = Producer(
        {"bootstrap.servers": bootstrap, "enable.idempotence": True, "linger.ms": 5}
    )
    failures: list[str] = []

    def on_delivery(error: Any, _message: Any) -> None:
        if error is not None:
            failures.append(str(error))

    count = 0
    for key, value in records:
        payload = value if isinstance(value, bytes | None) else orjson.dumps(value)
        while True:
            try:
                producer.produce(topic, key=key, value=payload, on_delivery=on_delivery)
                break
            except BufferError:
                producer.poll(0.1)
        count += 1
        producer.poll(0)
    producer.flush(60)
    if failures:
        raise RuntimeError(f"{len(failures)} deliveries failed, first: {failures[0]}")
    return count


def consume_all(
    bootstrap: str,
    topic: str,
    expected_count: int,
    timeout_s: float = 120.0,
    settle_s: float = 2.0,
    decode: bool = True,
    alive: Callable[[], bool] | None = None,
) -> list[tuple[str | None, Any]]:
    """Read ``topic`` from the beginning until ``expected_count`` records arrived.

    After reaching the count it keeps reading for ``settle_s`` so that duplicates beyond the
    expected count are seen too. Returns (key, value) pairs; values are JSON-decoded unless
    ``decode`` is False. Raises TimeoutError with the count reached when the deadline passes,
    and RuntimeError as soon as ``alive()`` (e.g. "the worker process still runs") is False.
    """
    consumer = Consumer(
        {
            "bootstrap.servers": bootstrap,
            "group.id": f"test-reader-{time.monotonic_ns()}",
            "auto.offset.reset": "earliest",
            "enable.auto.commit": False,
        }
    )
    consumer.subscribe([topic])
    records: list[tuple[str | None, Any]] = []
    deadline = time.monotonic() + timeout_s
    settle_deadline: float | None = None
    try:
        while True:
            now = time.monotonic()
            if settle_deadline is not None and now >= settle_deadline:
                return records
            if alive is not None and not alive():
                raise RuntimeError(
                    f"{topic}: gave up after {len(records)} records: producer side died"
                )
            if now >= deadline:
                raise TimeoutError(
                    f"{topic}: {len(records)} of {expected_count} records after {timeout_s} s"
                )
            for message in consumer.consume(num_messages=1000, timeout=0.5):
                if message.error() is not None:
                    continue
                key = message.key()
                value = message.value()
                records.append(
                    (
                        key.decode() if key is not None else None,
                        orjson.loads(value) if decode and value else value,
                    )
                )
            if settle_deadline is None and len(records) >= expected_count:
                settle_deadline = time.monotonic() + settle_s
    finally:
        consumer.close()
