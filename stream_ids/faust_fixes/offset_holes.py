"""Keeps each ``flows`` partition in offset order through the agent, and fills holes.

Why: faust-streaming clears its in-memory stream queues when a recovery completes, while the
fetcher may already have delivered records into them (faust-streaming issue #596). The cleared
records are never seen by the agent, yet their offsets count as read, so Faust does not fetch
them again: a hole. Faust will not commit past a hole of more than one offset, so the flows
came back only after the next restart (measured: a restarted worker skipped 424 flows of one
partition and committed nothing more, so the next restart repeated 13,946 verdicts); a hole of
exactly one offset Faust commits past, losing that flow (the one flow lost in a 56,277-flow
crash run). A per-host window also needs its flows in order.

:class:`OffsetGuard` looks at each batch before it is scored, per partition:

* the next expected offset is accepted, and the one after it is expected;
* an offset below the expected one was scored already (a stale copy): dropped;
* an offset above it is a hole ``[expected, offset)``: :meth:`OffsetGuard.holes` reports it,
  the agent reads exactly those records from Kafka with a plain consumer of its own
  (:class:`HoleReader`) and puts them in front of the batch, so the partition is contiguous
  again and is scored in order. Seeking Faust's consumer back was tried first and was
  unreliable: records still in flight move its read position past the hole again, so its
  fetch loop drops the re-fetched ones. Offsets the log really lacks (a transactional
  producer's commit markers, compaction) are not there to read; they are then accepted as a
  gap and logged (stream-ids' producers are idempotent, not transactional).

The first offset after a start or rebalance is expected at the partition's committed offset,
so records lost right after recovery are filled too. A rebalance resets the expectations.
When *every* queued record of a partition was cleared and no later one arrives (the producer
had already sent everything), no event shows the hole: a timer compares Faust's read position
with the expected offset (:meth:`OffsetGuard.stalled`) and fills the range it has read.

The same recovery has a second race, on the commit side. Faust starts its fetcher before it
seeks the partitions to their committed offsets, so the agent can score and commit its first
records (say 20102..20148) before the seek's ``perform_seek`` stores the committed offsets it
read *before* that commit (20102) as its own view. Faust then holds every later ack (lowest
acked 20149, more than one above 20102: "a gap at the head") and commits nothing more for that
partition until the worker restarts, when all of it is scored again (measured: 39% of a
100,000-flow crash run repeated, 14 repeats past the host window's redelivery memory
mis-scored). :meth:`OffsetGuard.blocked_commits` finds such a partition: every offset below
the guard's expected one was scored and published by this worker or committed before, so a
timer acks the range again and Faust's commits go on (the head-gap rule is
faust-streaming/faust#312's fix).

Upstream: faust-streaming/faust#596. Delete this module (and :mod:`.hole_filling`) once Faust
delivers every offset it counts as read.
"""

from __future__ import annotations

import logging
import time
from collections.abc import Callable, Mapping
from typing import Any

log = logging.getLogger(__name__)

# How often the worker looks for partitions read but silent (see stalled()).
CHECK_S = 1.0
# No event of a partition for this long while the consumer has read past the expected offset:
# the records were lost on the way to the agent. Longer than any queue backlog seen (~5 s).
STALL_S = 15.0


class OffsetGuard:
    """In-order admission of one topic's events per partition (see the module docstring)."""

    def __init__(self, clock: Callable[[], float] = time.monotonic, stall_s: float = STALL_S):
        self.clock = clock
        self.stall_s = stall_s
        self.expected: dict[int, int] = {}
        self.last_seen: dict[int, float] = {}
        self.since_reset = clock()
        self.generation = 0  # bumped by reset(): answers for an older assignment are dropped
        self.dropped_stale = 0
        self.filled = 0
        self.gaps_accepted = 0
        self.unblocked = 0  # offsets acked again by blocked_commits' caller

    def reset(self) -> None:
        """Forget every partition's position (after a rebalance or a failed batch)."""
        self.expected.clear()
        self.last_seen.clear()
        self.since_reset = self.clock()
        self.generation += 1

    def start_at(self, offsets: Mapping[int, int]) -> None:
        """Expect these partitions (not seen yet) to start at these offsets."""
        for partition, offset in offsets.items():
            self.expected.setdefault(partition, offset)

    def unknown(self, events: list[Any], committed: Mapping[int, int]) -> set[int]:
        """Partitions in ``events`` with no expected offset yet (ask Kafka for their start)."""
        return {
            event.message.partition
            for event in events
            if event.message.partition is not None
            and event.message.partition not in self.expected
            and event.message.partition not in committed
        }

    def holes(
        self, events: list[Any], committed: Mapping[int, int] | None = None
    ) -> list[tuple[int, int, int]]:
        """``(partition, first missing offset, next present offset)`` for each hole in order."""
        committed = committed or {}
        expected: dict[int, int] = {}
        found: list[tuple[int, int, int]] = []
        for event in events:
            partition, offset = event.message.partition, event.message.offset
            if partition is None or offset is None:
                continue
            want = expected.get(partition, self.expected.get(partition, committed.get(partition)))
            if want is not None and offset > want:
                found.append((partition, want, offset))
            if want is None or offset >= want:
                expected[partition] = offset + 1
        return found

    def admit(
        self, events: list[Any], committed: Mapping[int, int] | None = None
    ) -> tuple[list[Any], list[Any]]:
        """(events to score, in order per partition; stale copies, already scored or committed).

        Call after the holes were filled: a hole still open here is not in the log and is
        accepted as a gap.
        """
        committed = committed or {}
        kept: list[Any] = []
        stale: list[Any] = []
        now = self.clock()
        for event in events:
            message = event.message
            partition, offset = message.partition, message.offset
            if partition is None or offset is None:
                kept.append(event)
                continue
            self.last_seen[partition] = now
            expected = self.expected.get(partition, committed.get(partition))
            if expected is not None and offset < expected:
                self.dropped_stale += 1
                stale.append(event)
                continue
            if expected is not None and offset > expected:
                log.warning(
                    "partition %d: offsets %d..%d are not in the log; taken as a gap",
                    partition,
                    expected,
                    offset - 1,
                )
                self.gaps_accepted += 1
            self.expected[partition] = offset + 1
            kept.append(event)
        return kept, stale

    def stalled(
        self, read: Mapping[int, int], committed: Mapping[int, int] | None = None
    ) -> list[tuple[int, int, int]]:
        """``(partition, expected, read + 1)`` for partitions read past the expected offset
        from which nothing reached the agent for ``stall_s``.

        ``read``: partition -> the last offset Faust's fetch loop handed on (its read position).
        """
        committed = committed or {}
        now = self.clock()
        found: list[tuple[int, int, int]] = []
        for partition, last_read in read.items():
            expected = self.expected.get(partition, committed.get(partition))
            # after a seek Faust sets the read position to the *next* offset, so only a read
            # position beyond the expected one shows records lost on the way
            if expected is None or last_read <= expected:
                continue
            if now - self.last_seen.get(partition, self.since_reset) < self.stall_s:
                continue
            log.warning(
                "partition %d: read up to %d but nothing after %d reached the agent in %.0f s",
                partition,
                last_read,
                expected - 1,
                self.stall_s,
            )
            self.last_seen[partition] = now  # one report per stall_s
            found.append((partition, expected, last_read + 1))
        return found

    def blocked_commits(
        self, committed: Mapping[int, int], lowest_acked: Mapping[int, int]
    ) -> list[tuple[int, int, int]]:
        """``(partition, start, end)``: offsets ``start <= offset < end`` that Faust's commit
        waits for although this worker is past them (see the module docstring).

        ``committed``: Faust's view of each partition's committed offset; ``lowest_acked``: the
        lowest offset it holds acked and not yet committed. Faust commits past a gap of exactly
        one offset by itself (the holes above are filled before that matters), so only a wider
        gap blocks. Call while no batch is being scored: then every offset below the expected
        one is published or committed.
        """
        found: list[tuple[int, int, int]] = []
        for partition, lowest in lowest_acked.items():
            start = committed.get(partition)
            expected = self.expected.get(partition)
            if start is None or expected is None or lowest - start <= 1:
                continue
            end = min(lowest, expected)
            if end > start:
                found.append((partition, start, end))
        return found


class HoleReader:
    """Reads given offset ranges of one topic with a plain confluent-kafka consumer.

    No group, no commits: it only reads what Faust's consumer lost on the way to the agent;
    the agent acks the records through Faust's consumer, so its commits cover them.
    """

    def __init__(self, config: Mapping[str, Any], topic: str, timeout_s: float = 10.0) -> None:
        self.config = dict(config)
        self.topic = topic
        self.timeout_s = timeout_s
        self._consumer: Any = None
        self._group_consumer: Any = None

    def read(self, partition: int, start: int, end: int) -> list[Any]:
        """Records ``start <= offset < end`` of ``partition`` (fewer if the log lacks some)."""
        from confluent_kafka import Consumer, TopicPartition

        if self._consumer is None:
            self._consumer = Consumer(
                {
                    **self.config,
                    "group.id": "stream-ids-hole-reader",  # required; never joined or committed
                    "enable.auto.commit": False,
                    "enable.auto.offset.store": False,
                    "auto.offset.reset": "earliest",
                }
            )
        consumer = self._consumer
        consumer.assign([TopicPartition(self.topic, partition, start)])
        records: list[Any] = []
        deadline = time.monotonic() + self.timeout_s
        idle = 0
        try:
            while time.monotonic() < deadline and idle < 3:
                batch = consumer.consume(num_messages=1000, timeout=0.5)
                idle = 0 if batch else idle + 1
                for record in batch:
                    if record.error() is not None:
                        continue
                    if record.offset() >= end:
                        return records
                    records.append(record)
                    if record.offset() >= end - 1:
                        return records
        finally:
            consumer.unassign()
        return records

    def committed(self, group: str, partitions: set[int]) -> dict[int, int]:
        """The group's committed offset per partition (the log start where it has none)."""
        from confluent_kafka import Consumer, TopicPartition

        if self._group_consumer is None:
            # never subscribes, so it never joins the group: it only asks the coordinator
            self._group_consumer = Consumer(
                {**self.config, "group.id": group, "enable.auto.commit": False}
            )
        consumer = self._group_consumer
        found = consumer.committed(
            [TopicPartition(self.topic, partition) for partition in sorted(partitions)],
            timeout=10,
        )
        offsets: dict[int, int] = {}
        for tp in found:
            if tp.offset >= 0:
                offsets[tp.partition] = tp.offset
            else:  # nothing committed: the worker starts at the earliest offset
                low, _high = consumer.get_watermark_offsets(
                    TopicPartition(self.topic, tp.partition), timeout=10
                )
                offsets[tp.partition] = low
        return offsets

    def close(self) -> None:
        for consumer in (self._consumer, self._group_consumer):
            if consumer is not None:
                consumer.close()
        self._consumer = self._group_consumer = None
