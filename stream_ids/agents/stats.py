"""The statistics agent: a timer that publishes the worker's rolling statistics to ``stats``.

The scoring agent adds each batch's counts to a :class:`~stream_ids.rolling.RollingStats` in
memory (no extra pass over the verdicts); every ``stats_interval_s`` this timer publishes the
tumbling 10 s, sliding 60 s and cumulative records, keyed by worker name.
"""

from __future__ import annotations

from typing import Any

import orjson

from stream_ids.rolling import RollingStats
from stream_ids.topics import Topics


async def publish_stats(topics: Topics, stats: RollingStats, metrics: Any = None) -> list[dict]:
    records = stats.snapshot()
    key = stats.worker.encode()
    for record in records:
        await topics.stats.send(key=key, value=orjson.dumps(record))
        if metrics is not None and record["window"] == "sliding_60s":
            metrics.set_rates(record["false_alarm_rate"], record["precision"], record["recall"])
    return records


def register_stats_timer(
    app: Any, topics: Topics, stats: RollingStats, interval_s: float, metrics: Any = None
) -> Any:
    async def emit_stats() -> None:
        await publish_stats(topics, stats, metrics)

    return app.timer(interval=interval_s, name="stream_ids.emit_stats")(emit_stats)
