"""The statistics agent: a timer that publishes the worker's rolling statistics to ``stats``.

The scoring agent adds each batch's counts to a :class:`~stream_ids.rolling.RollingStats` in
memory (no extra pass over the verdicts); every ``stats_interval_s`` this timer publishes the
tumbling 10 s, sliding 60 s and cumulative records, keyed by worker name.
"""

from __future__ import annotations

from typing import Any

from stream_ids.rolling import RollingStats
from stream_ids.topics import Topics
from stream_ids.wire import encode_record


async def publish_stats(topics: Topics, stats: RollingStats, metrics: Any = None) -> list[dict]:
    records = stats.snapshot()
    key = stats.worker.encode()
    for record in records:
        await topics.stats.send(key=key, value=encode_record(record))
        if metrics is not None and record["window"] == "sliding_60s":
            metrics.set_rates(record["false_alarm_rate"], record["precision"], record["recall"])
    return records


async def report_lag(consumer: Any, flows_topic: str, metrics: Any, reported: set[int]) -> None:
    """Set the consumer-lag gauge of each assigned ``flows`` partition; forget revoked ones.

    Lag is the partition's high watermark minus this worker's fetch position (Faust's public
    consumer API); partitions whose watermark is not known yet are skipped until it is.
    """
    assigned = {tp for tp in consumer.assignment() if tp.topic == flows_topic}
    for tp in assigned:
        try:
            highwater = consumer.highwater(tp)
            position = await consumer.position(tp)
        except Exception:  # noqa: S112 - revoked mid-rebalance: a metric must not stop the stats
            continue
        if highwater is None or position is None:
            continue
        metrics.set_lag(tp.partition, highwater - position)
        reported.add(tp.partition)
    for partition in reported - {tp.partition for tp in assigned}:
        metrics.forget_partition(partition)
        reported.discard(partition)


def register_stats_timer(
    app: Any, topics: Topics, stats: RollingStats, interval_s: float, metrics: Any = None
) -> Any:
    lag_partitions: set[int] = set()

    async def emit_stats() -> None:
        await publish_stats(topics, stats, metrics)
        if metrics is not None:
            await report_lag(app.consumer, topics.flows.get_topic_name(), metrics, lag_partitions)

    return app.timer(interval=interval_s, name="stream_ids.emit_stats")(emit_stats)
