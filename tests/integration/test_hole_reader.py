"""The worker's hole reader reads exact offset ranges from a real broker."""

from __future__ import annotations

import pytest
from confluent_kafka import Producer
from kafka_helpers import create_topic

from stream_ids.faust_fixes import FilledEvent
from stream_ids.faust_fixes.offset_holes import HoleReader

pytestmark = pytest.mark.integration


def test_reads_exactly_the_missing_range(kafka_bootstrap, unique_topic) -> None:
    topic = unique_topic("holes")
    create_topic(kafka_bootstrap, topic, partitions=2)
    producer = Producer({"bootstrap.servers": kafka_bootstrap, "enable.idempotence": True})
    for index in range(50):
        producer.produce(topic, key=b"h", value=str(index).encode(), partition=1)
    assert producer.flush(30) == 0
    reader = HoleReader({"bootstrap.servers": kafka_bootstrap}, topic)
    try:
        records = reader.read(1, 10, 20)
        assert [r.offset() for r in records] == list(range(10, 20))
        assert [r.value() for r in records] == [str(i).encode() for i in range(10, 20)]
        assert [r.offset() for r in reader.read(1, 45, 60)] == list(range(45, 50))  # log ends
        assert reader.read(0, 0, 5) == []  # an empty partition
        event = FilledEvent.of(records[0])
        assert (event.message.partition, event.message.offset, event.message.key) == (1, 10, b"h")
        assert event.message.acked is False and event.filled
    finally:
        reader.close()
