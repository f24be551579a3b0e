"""Topic administration shared by the worker and the producers (confluent-kafka's AdminClient).

Here, not in ``producers``, because the worker creates its topics too and ``stream_ids`` never
imports ``producers``.
"""

from __future__ import annotations

from typing import Any

from stream_ids.kafka_probe import librdkafka_logger
from stream_ids.settings import Settings


def ensure_topic(settings: Settings, topic: str, partitions: int | None = None) -> None:
    """Create ``topic`` with ``topic_partitions`` partitions unless it exists."""
    from confluent_kafka import KafkaException
    from confluent_kafka.admin import AdminClient, NewTopic

    config: dict[str, Any] = settings.confluent_config()
    config["logger"] = librdkafka_logger()
    admin = AdminClient(config)
    metadata = admin.list_topics(timeout=15)
    if topic in metadata.topics and not metadata.topics[topic].error:
        return
    futures = admin.create_topics(
        [
            NewTopic(
                topic,
                num_partitions=partitions or settings.topic_partitions,
                replication_factor=settings.topic_replication_factor,
            )
        ]
    )
    for future in futures.values():
        try:
            future.result(timeout=30)
        except KafkaException as error:
            if "TOPIC_ALREADY_EXISTS" not in str(error):
                raise
