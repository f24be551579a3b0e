"""The fixes connected to a worker's Faust app: what :func:`stream_ids.agents.build_worker` calls.

:func:`offset_hooks` makes the callbacks the batch scorer's hole filling needs (read a range
from Kafka, ask for committed offsets, ack into Faust's consumer); :func:`connect` hooks the
rebalance signal, the shutdown signal and the 1 s timer of :mod:`.hole_filling` and
:mod:`.recovery_stall` to the app. Removing those fixes means deleting this module's parts too.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Awaitable, Callable, Mapping
from typing import Any, NamedTuple, Protocol

from confluent_kafka import KafkaException

from stream_ids.faust_fixes.hole_filling import (
    FilledEvent,
    committed_offsets_of,
    done_message,
    lowest_acked_of,
    read_offsets_of,
)
from stream_ids.faust_fixes.offset_holes import CHECK_S, HoleReader, OffsetGuard
from stream_ids.faust_fixes.recovery_stall import RecoveryWatch

log = logging.getLogger(__name__)


class OffsetHooks(NamedTuple):
    """The callbacks of :class:`stream_ids.faust_fixes.hole_filling.HoleFiller` for one app."""

    committed_offsets: Callable[[], dict[int, int]]
    fill: Callable[[int, int, int], Awaitable[list[Any]]]
    ack_filled: Callable[[list[Any]], None]
    ack_offsets: Callable[[int, int, int], None]
    lookup_committed: Callable[[set[int]], Awaitable[dict[int, int]]]


class GuardedScorer(Protocol):
    """What :func:`connect` needs of the batch scorer (``stream_ids.worker.batch.BatchScorer``)."""

    @property
    def guard(self) -> OffsetGuard | None: ...

    async def fill_stalled(self, read: Mapping[int, int]) -> None: ...

    async def unblock_commits(self, lowest_acked: Callable[[], Mapping[int, int]]) -> None: ...


def offset_hooks(
    app: Any, confluent_config: Mapping[str, Any], flows_topic: str, partitions: int
) -> OffsetHooks:
    """The hole-filling callbacks over ``app`` and a plain consumer of ``flows_topic``."""
    reader = HoleReader(confluent_config, flows_topic)

    async def fill(partition: int, start: int, end: int) -> list[Any]:
        loop = asyncio.get_running_loop()
        records = await loop.run_in_executor(None, reader.read, partition, start, end)
        return [FilledEvent.of(record) for record in records]

    async def lookup_committed(wanted_partitions: set[int]) -> dict[int, int]:
        # every partition in one round trip: only the first batches after a (re)start ask,
        # and each call is a pause for the batch that makes it
        wanted = wanted_partitions | set(range(partitions))
        loop = asyncio.get_running_loop()
        try:
            return await loop.run_in_executor(None, reader.committed, app.conf.id, wanted)
        except KafkaException as error:  # unknown start: holes at the start go unseen
            log.warning(
                "committed offsets of partitions %s unknown: %s", sorted(wanted_partitions), error
            )
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

    return OffsetHooks(
        committed_offsets_of(app, flows_topic), fill, ack_filled, ack_offsets, lookup_committed
    )


def connect(
    app: Any,
    scorer: GuardedScorer,
    hooks: OffsetHooks,
    flows_topic: str,
    on_assigned: Callable[[], None],
) -> RecoveryWatch:
    """Hook the fixes to ``app``'s signals and a timer; ``on_assigned`` runs at each
    assignment too. Returns the recovery watch (started at the first assignment)."""
    recovery_watch = RecoveryWatch(app)
    prefetches: set[asyncio.Future[None]] = set()

    def assigned(sender: Any, /, *args: Any, signal: Any, **kwargs: Any) -> None:
        # a rebalance moves partitions: positions this worker expected no longer hold. The
        # new start offsets are asked for now, before the first batch arrives (asking from the
        # first batch held it ~1 s: the latency tail of a fresh worker, docs/performance.md)
        recovery_watch.start()  # runs from the first assignment on, recoveries included
        on_assigned()
        guard = scorer.guard
        if guard is not None:
            guard.reset()
            task = asyncio.ensure_future(prefetch_starts(guard, guard.generation))
            prefetches.add(task)
            task.add_done_callback(prefetches.discard)

    async def prefetch_starts(guard: OffsetGuard, generation: int) -> None:
        starts = await hooks.lookup_committed(set())
        if guard.generation == generation:
            guard.start_at(starts)

    def stop_recovery_watch(sender: Any, /, *args: Any, **kwargs: Any) -> None:
        recovery_watch.stop()

    app.on_partitions_assigned.connect(assigned)
    app.on_before_shutdown.connect(stop_recovery_watch)
    read_offsets = read_offsets_of(app, flows_topic)
    lowest_acked = lowest_acked_of(app, flows_topic)

    @app.timer(interval=CHECK_S)
    async def fill_stalled_partitions() -> None:
        await scorer.fill_stalled(read_offsets())
        await scorer.unblock_commits(lowest_acked)

    return recovery_watch
