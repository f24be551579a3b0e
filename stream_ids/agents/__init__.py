"""The agents of a worker: scoring (flows -> verdicts/alerts/dead letters) and statistics.

:func:`build_worker` wires an app, its topics, the host-window table, the scoring agent, the
statistics timer and the calibration watch together and returns them as a :class:`WorkerParts`.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass
from typing import Any

from stream_ids.agents.calibration import register_calibration_watch
from stream_ids.app import create_app, worker_name
from stream_ids.calibration import CalibrationWatch
from stream_ids.faust_fixes import (
    RecoveryWatch,
    check_internals,
    install_duplicate_acks_fix,
    offset_hooks,
)
from stream_ids.faust_fixes import connect as connect_fixes
from stream_ids.rolling import RollingStats
from stream_ids.settings import Settings
from stream_ids.tables import AssignedPartitions, RestoreCounter, host_window_table
from stream_ids.topics import Topics, declare_topics
from stream_ids.worker.batch import BatchScorer
from stream_ids.worker.protocols import ScoringModel

log = logging.getLogger(__name__)


@dataclass
class WorkerParts:
    app: Any
    topics: Topics
    table: Any
    scorer: BatchScorer
    stats: RollingStats
    agent: Any
    timer: Any
    recovery_watch: RecoveryWatch
    calibration_watch: CalibrationWatch | None = None


def build_worker(
    settings: Settings, model: ScoringModel, metrics: Any = None, **app_overrides: Any
) -> WorkerParts:
    """A Faust app with the scoring agent and statistics timer, scoring with ``model``."""
    from stream_ids.agents.stats import register_stats_timer

    check_internals()  # the Faust internals the fixes read: fail now, not silently later
    install_duplicate_acks_fix()  # Faust's commits held back by offsets acked twice
    app = create_app(settings, **app_overrides)
    topics = declare_topics(app, settings)
    table = host_window_table(app, partitions=settings.topic_partitions)
    name = worker_name()
    stats = RollingStats(name)
    stats.set_threshold(float(model.threshold), model.calibration)
    flows_topic = topics.flows.get_topic_name()

    # the hole filling and recovery watch of stream_ids.faust_fixes, around the scorer
    hooks = offset_hooks(app, settings.confluent_config(), flows_topic, settings.topic_partitions)
    restore_counter = RestoreCounter(table)
    app.on_rebalance_complete.connect(restore_counter.recovered)
    batch_scorer = BatchScorer(
        model,
        table,
        topics,
        stats,
        metrics=metrics,
        committed_offsets=hooks.committed_offsets,
        fill=hooks.fill,
        ack_filled=hooks.ack_filled,
        ack_offsets=hooks.ack_offsets,
        lookup_committed=hooks.lookup_committed,
        host_ttl_s=settings.host_ttl_s,
        max_hosts=settings.max_hosts,
        restore_counter=restore_counter,
        assigned_partitions=AssignedPartitions(app, flows_topic),
    )
    # at each assignment the restored hosts are indexed again, at the next batch boundary
    recovery_watch = connect_fixes(
        app, batch_scorer, hooks, flows_topic, on_assigned=batch_scorer.host_state.reassigned
    )

    batch_size, within = settings.batch_size, settings.max_wait_s

    async def score_flows(stream: Any) -> None:
        try:
            async for events in stream.take_events(batch_size, within=within):
                # returns while the batch's last chunk is scored; acked once all is published
                await batch_scorer.process(events, overlap=True)
        finally:
            batch_scorer.abandon_tail()  # stopping: left unacked for the partition's next owner

    agent = app.agent(topics.flows, name="stream_ids.score_flows")(score_flows)
    timer = register_stats_timer(app, topics, stats, settings.stats_interval_s, metrics)
    # calibration.json beside the model: a new, changed or removed one applies within seconds
    calibration_watch = register_calibration_watch(app, model, batch_scorer, stats)
    return WorkerParts(
        app, topics, table, batch_scorer, stats, agent, timer, recovery_watch, calibration_watch
    )
