"""The topics of the streaming path, declared on a Faust app (names from Settings).

Every topic carries raw bytes (orjson-encoded JSON values, UTF-8 host keys): the scoring agent
validates ``flows`` itself so that a bad record becomes a dead-letter record, never a
deserialisation crash; outputs are encoded once with orjson. ``flows``, ``verdicts`` and
``alerts`` are keyed by source host; ``stats`` by worker name.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from stream_ids.settings import Settings


@dataclass(frozen=True)
class Topics:
    flows: Any
    verdicts: Any
    alerts: Any
    stats: Any
    dead_letter: Any


def declare_topics(app: Any, settings: Settings) -> Topics:
    def topic(name: str, partitions: int | None) -> Any:
        return app.topic(
            name,
            key_type=bytes,
            value_type=bytes,
            key_serializer="raw",
            value_serializer="raw",
            partitions=partitions,
            replicas=settings.topic_replication_factor,
        )

    partitions = settings.topic_partitions
    return Topics(
        flows=topic(settings.topic_flows, partitions),
        verdicts=topic(settings.topic_verdicts, partitions),
        alerts=topic(settings.topic_alerts, partitions),
        stats=topic(settings.topic_stats, 1),
        dead_letter=topic(settings.topic_dead_letter, partitions),
    )
