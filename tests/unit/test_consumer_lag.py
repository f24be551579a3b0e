"""The consumer-lag gauge: per assigned flows partition, forgotten after a revocation."""

from __future__ import annotations

from typing import NamedTuple

from prometheus_client import CollectorRegistry

from stream_ids.agents.stats import report_lag
from stream_ids.observability import WorkerMetrics


class TP(NamedTuple):
    topic: str
    partition: int


class FakeConsumer:
    def __init__(self, offsets: dict[TP, tuple[int | None, int | None]]) -> None:
        self.offsets = offsets

    def assignment(self) -> set[TP]:
        return set(self.offsets)

    def highwater(self, tp: TP) -> int | None:
        return self.offsets[tp][0]

    async def position(self, tp: TP) -> int | None:
        return self.offsets[tp][1]


def _lag(registry: CollectorRegistry) -> dict[str, float]:
    return {
        sample.labels["partition"]: sample.value
        for metric in registry.collect()
        for sample in metric.samples
        if sample.name == "stream_ids_consumer_lag"
    }


async def test_lag_per_partition_and_revoked_partitions_disappear() -> None:
    registry = CollectorRegistry()
    metrics = WorkerMetrics(registry)
    reported: set[int] = set()
    consumer = FakeConsumer({
        TP("flows", 0): (1000, 400),
        TP("flows", 3): (50, 50),
        TP("flows", 5): (None, 10),  # watermark not fetched yet: skipped
        TP("other", 1): (99, 0),  # not the flows topic
    })
    await report_lag(consumer, "flows", metrics, reported)
    assert _lag(registry) == {"0": 600.0, "3": 0.0}

    consumer.offsets = {TP("flows", 3): (80, 60)}  # partition 0 revoked by a rebalance
    await report_lag(consumer, "flows", metrics, reported)
    assert _lag(registry) == {"3": 20.0}
