"""The agents of a worker: scoring (flows -> verdicts/alerts/dead letters) and statistics.

:func:`build_worker` wires an app, its topics, the host-window table, the scoring agent and the
statistics timer together and returns them as a :class:`WorkerParts`.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from stream_ids.agents.scoring import BatchScorer
from stream_ids.app import create_app, worker_name
from stream_ids.rolling import RollingStats
from stream_ids.settings import Settings
from stream_ids.tables import host_window_table
from stream_ids.topics import Topics, declare_topics


@dataclass
class WorkerParts:
    app: Any
    topics: Topics
    table: Any
    scorer: BatchScorer
    stats: RollingStats
    agent: Any
    timer: Any


def build_worker(
    settings: Settings, model: Any, metrics: Any = None, **app_overrides: Any
) -> WorkerParts:
    """A Faust app with the scoring agent and statistics timer, scoring with ``model``."""
    from stream_ids.agents.stats import register_stats_timer

    app = create_app(settings, **app_overrides)
    topics = declare_topics(app, settings)
    table = host_window_table(app, partitions=settings.topic_partitions)
    name = worker_name()
    stats = RollingStats(name)
    batch_scorer = BatchScorer(model, table, topics, stats, metrics=metrics)
    batch_size, within = settings.batch_size, settings.max_wait_s

    async def score_flows(stream: Any) -> None:
        async for events in stream.take_events(batch_size, within=within):
            await batch_scorer.process(events)

    agent = app.agent(topics.flows, name="stream_ids.score_flows")(score_flows)
    timer = register_stats_timer(app, topics, stats, settings.stats_interval_s, metrics)
    return WorkerParts(app, topics, table, batch_scorer, stats, agent, timer)
