"""The agents of a worker: scoring (flows -> verdicts/alerts/dead letters) and statistics.

:func:`build_worker` wires an app, its topics, the host-window table, the scoring agent, the
statistics timer and the calibration watch together and returns them as a :class:`WorkerParts`.
"""

from __future__ import annotations

import asyncio
import logging
from dataclasses import dataclass
from typing import Any

from confluent_kafka import KafkaException

from stream_ids.agents.calibration import register_calibration_watch
from stream_ids.app import create_app, worker_name
from stream_ids.calibration import CalibrationWatch
from stream_ids.faust_fixes import (
    CHECK_S,
    FilledEvent,
    HoleReader,
    RecoveryWatch,
    check_internals,
    committed_offsets_of,
    done_message,
    lowest_acked_of,
    read_offsets_of,
)
from stream_ids.rolling import RollingStats
from stream_ids.settings import Settings
from stream_ids.tables import RestoreCounter, host_window_table
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
    app = create_app(settings, **app_overrides)
    topics = declare_topics(app, settings)
    table = host_window_table(app, partitions=settings.topic_partitions)
    name = worker_name()
    stats = RollingStats(name)
    stats.set_threshold(float(model.threshold), getattr(model, "calibration", None))
    flows_topic = topics.flows.get_topic_name()

    reader = HoleReader(settings.confluent_config(), flows_topic)

    async def fill(partition: int, start: int, end: int) -> list[Any]:
        loop = asyncio.get_running_loop()
        records = await loop.run_in_executor(None, reader.read, partition, start, end)
        return [FilledEvent.of(record) for record in records]

    async def lookup_committed(partitions: set[int]) -> dict[int, int]:
        # every partition in one round trip: only the first batches after a (re)start ask,
        # and each call is a pause for the batch that makes it
        wanted = partitions | set(range(settings.topic_partitions))
        loop = asyncio.get_running_loop()
        try:
            return await loop.run_in_executor(None, reader.committed, app.conf.id, wanted)
        except KafkaException as error:  # unknown start: holes at the start go unseen
            log.warning("committed offsets of partitions %s unknown: %s", sorted(partitions), error)
            return {}

    def ack_filled(messages: list[Any]) -> None:
        # records the agent read itself: acked straight into Faust's consumer, so its commits
        # cover the hole (take_events never saw them)
        for message in messages:
            message.acked = False
            app.consumer.ack(message)

    def ack_offsets(partition: int, start: int, end: int) -> None:
        # offsets done before (see HoleFiller.unblock_commits): acked as bare messages
        ack_filled([done_message(flows_topic, partition, offset) for offset in range(start, end)])

    recovery_watch = RecoveryWatch(app)
    restore_counter = RestoreCounter(table)
    app.on_rebalance_complete.connect(restore_counter.recovered)
    batch_scorer = BatchScorer(
        model,
        table,
        topics,
        stats,
        metrics=metrics,
        committed_offsets=committed_offsets_of(app, flows_topic),
        fill=fill,
        ack_filled=ack_filled,
        ack_offsets=ack_offsets,
        lookup_committed=lookup_committed,
        host_ttl_s=settings.host_ttl_s,
        max_hosts=settings.max_hosts,
        restore_counter=restore_counter,
    )

    def reset_offset_guard(sender: Any, /, *args: Any, signal: Any, **kwargs: Any) -> None:
        # a rebalance moves partitions: positions this worker expected no longer hold. The
        # new start offsets are asked for now, before the first batch arrives (asking from the
        # first batch held it ~1 s: the latency tail of a fresh worker, docs/performance.md)
        recovery_watch.start()  # runs from the first assignment on, recoveries included
        batch_scorer.host_state.reassigned()  # restored hosts indexed again at the next batch
        guard = batch_scorer.guard
        if guard is not None:
            guard.reset()
            generation = guard.generation
            task = asyncio.ensure_future(prefetch_starts(generation))
            prefetches.add(task)
            task.add_done_callback(prefetches.discard)

    prefetches: set[asyncio.Future[None]] = set()

    async def prefetch_starts(generation: int) -> None:
        guard = batch_scorer.guard
        starts = await lookup_committed(set())
        if guard is not None and guard.generation == generation:
            guard.start_at(starts)

    app.on_partitions_assigned.connect(reset_offset_guard)

    def stop_recovery_watch(sender: Any, /, *args: Any, **kwargs: Any) -> None:
        recovery_watch.stop()

    app.on_before_shutdown.connect(stop_recovery_watch)

    read_offsets = read_offsets_of(app, flows_topic)
    lowest_acked = lowest_acked_of(app, flows_topic)

    @app.timer(interval=CHECK_S)
    async def fill_stalled_partitions() -> None:
        await batch_scorer.fill_stalled(read_offsets())
        await batch_scorer.unblock_commits(lowest_acked)

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
