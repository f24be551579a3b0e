"""The worker's side of :mod:`stream_ids.faust_fixes.offset_holes`: holes filled, commits freed.

Upstream: faust-streaming/faust#596 (records cleared from the stream queues when a recovery
completes: an offset hole the agent never sees) and the commit race of the same recovery (a
gap at the head of the acked offsets holds every later commit; faust-streaming/faust#312 made
Faust hold commits there). Delete this module with :mod:`.offset_holes` once Faust delivers
every offset it counts as read.

Private attributes read (checked at start-up): Faust's consumer's ``_committed_offset``,
``_read_offset`` and ``_acked`` (TP -> offsets; no public accessor in faust-streaming 0.15).
"""

from __future__ import annotations

import logging
from collections.abc import Awaitable, Callable, Mapping
from typing import Any

from faust.types import TP
from faust.types.tuples import ConsumerMessage

from stream_ids.faust_fixes.held_acks import hold_back
from stream_ids.faust_fixes.offset_holes import OffsetGuard

log = logging.getLogger(__name__)

Fill = Callable[[int, int, int], Awaitable[list[Any]]]


class HoleFiller:
    """Admits a batch's events in offset order per partition, reading holes from Kafka first."""

    def __init__(
        self,
        fill: Fill,
        committed_offsets: Callable[[], Mapping[int, int]] | None = None,
        ack_filled: Callable[[list[Any]], None] | None = None,
        ack_offsets: Callable[[int, int, int], None] | None = None,
        lookup_committed: Callable[[set[int]], Awaitable[dict[int, int]]] | None = None,
    ) -> None:
        self.fill = fill
        self.committed_offsets = committed_offsets
        self.ack_filled = ack_filled
        self.ack_offsets = ack_offsets
        self.lookup_committed = lookup_committed
        self.guard = OffsetGuard()

    async def admit(self, events: list[Any]) -> tuple[list[Any], list[Any], list[Any]]:
        """(events to score, holes' records among them, stale copies not to score)."""
        committed = dict(self.committed_offsets() if self.committed_offsets else {})
        unknown = self.guard.unknown(events, committed)
        if unknown and self.lookup_committed is not None:
            # Faust has not read them yet (the first batch can come before its seek to the
            # committed offsets): without a start, a hole right at the start would go unseen
            looked_up = await self.lookup_committed(unknown)
            committed.update(looked_up)
            self.guard.start_at(looked_up)  # asked once per (re)start
        filled: list[Any] = []
        holes = self.guard.holes(events, committed)
        if holes:
            events, filled = await self.with_filled(events, holes)
        events, stale = self.guard.admit(events, committed)
        return events, filled, stale

    async def with_filled(
        self, events: list[Any], holes: list[tuple[int, int, int]]
    ) -> tuple[list[Any], list[Any]]:
        """``events`` with each hole's records read from Kafka in front of the hole's end."""
        inserts: dict[tuple[int, int], list[Any]] = {}
        filled: list[Any] = []
        for partition, start, end in holes:
            records = await self.fill(partition, start, end)
            log.warning(
                "partition %d: offsets %d..%d never reached the agent; read %d of them from Kafka",
                partition,
                start,
                end - 1,
                len(records),
            )
            inserts[(partition, end)] = records
            filled.extend(records)
        merged: list[Any] = []
        for event in events:
            records = inserts.pop((event.message.partition, event.message.offset), [])
            if records:
                merged.extend(records)
            merged.append(event)
        hold_back(filled)
        self.guard.filled += len(filled)
        return merged, filled

    async def fill_stalled(
        self, read: Mapping[int, int], process: Callable[[list[Any]], Awaitable[None]]
    ) -> None:
        """Read and ``process`` what partitions read but silent never delivered (a timer)."""
        committed = self.committed_offsets() if self.committed_offsets is not None else {}
        for partition, start, end in self.guard.stalled(read, committed):
            records = await self.fill(partition, start, end)
            log.warning(
                "partition %d: read %d records of offsets %d..%d from Kafka",
                partition,
                len(records),
                start,
                end - 1,
            )
            if records:
                await process(records)
                if self.ack_filled is not None:
                    self.ack_filled([event.message for event in records])

    def unblock_commits(self, lowest_acked: Mapping[int, int]) -> None:
        """Ack again the offsets Faust's commit waits for but this worker is past; call with
        no batch in flight (every offset below the expected one is done)."""
        if self.ack_offsets is None or self.committed_offsets is None:
            return
        for partition, start, end in self.guard.blocked_commits(
            self.committed_offsets(), lowest_acked
        ):
            log.warning(
                "partition %d: commits held at %d although offsets up to %d were scored or "
                "committed already (Faust's recovery race); acking %d..%d again",
                partition,
                start,
                end - 1,
                start,
                end - 1,
            )
            self.ack_offsets(partition, start, end)
            self.guard.unblocked += end - start


def private_offsets_of(app: Any, topic: str, attribute: str) -> Callable[[], dict[int, int]]:
    """partition -> offset from one of Faust's consumer's private TP -> offset maps.

    ``_committed_offset`` (next offset to deliver after a restart), ``_read_offset`` (the last
    offset its fetch loop handed on); no public accessor in faust-streaming 0.15. Before the
    consumer exists: empty (the attributes themselves are checked at start-up).
    """

    def snapshot() -> dict[int, int]:
        consumer = app._consumer
        if consumer is None:
            return {}
        offsets = getattr(consumer, attribute)
        return {
            tp.partition: int(offset)
            for tp, offset in list(offsets.items())
            if tp.topic == topic and offset is not None
        }

    return snapshot


def committed_offsets_of(app: Any, topic: str) -> Callable[[], dict[int, int]]:
    """A snapshot function: partition -> committed offset of ``topic`` in this worker.

    Unknown partitions are left out: the host state then keeps a fixed reserve of rows
    (:data:`stream_ids.tables.RESERVE`).
    """
    return private_offsets_of(app, topic, "_committed_offset")


def read_offsets_of(app: Any, topic: str) -> Callable[[], dict[int, int]]:
    """A snapshot function: partition -> the last offset Faust's fetch loop handed on."""
    return private_offsets_of(app, topic, "_read_offset")


def lowest_acked_of(app: Any, topic: str) -> Callable[[], dict[int, int]]:
    """A snapshot function: partition -> lowest offset Faust holds acked but not committed
    (its consumer's private ``_acked``: TP -> acked offsets, unsorted between commits)."""

    def snapshot() -> dict[int, int]:
        consumer = app._consumer
        if consumer is None:
            return {}
        return {
            tp.partition: min(offsets)
            for tp, offsets in list(consumer._acked.items())
            if tp.topic == topic and offsets
        }

    return snapshot


def done_message(topic: str, partition: int, offset: int) -> ConsumerMessage:
    """A bare message standing for an offset that was processed before, for Faust's ack."""
    return ConsumerMessage(
        topic, partition, offset, 0.0, 0, None, None, None, None, tp=TP(topic, partition)
    )


class FilledEvent:
    """A record the agent read from Kafka itself (a hole), shaped like a Faust event."""

    filled = True

    def __init__(self, message: Any) -> None:
        self.message = message

    @classmethod
    def of(cls, record: Any) -> FilledEvent:
        _kind, timestamp = record.timestamp()
        message = ConsumerMessage(
            record.topic(),
            record.partition(),
            record.offset(),
            timestamp / 1000.0,
            0,
            record.headers(),
            record.key(),
            record.value(),
            None,
            tp=TP(record.topic(), record.partition()),
        )
        return cls(message)
