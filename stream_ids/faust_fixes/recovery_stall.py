"""Watches Faust's changelog recovery and reads a stalled changelog partition again.

Why: in a scale-in run (CI on 8880f81, ``test_scale_out_and_in_keeps_every_flow_and_host_history``)
the worker that took over partitions 4-7 from a stopped worker stayed in recovery for the
test's whole 300 s. Faust had sought the four changelog partitions to offset 0 and resumed
them; partition 7 (1,048 records) recovered, but not one record of partitions 4, 5 and 6 ever
reached the recovery (Faust's own warning, every 5 s: "No event received for active tp ... since
recovery start"). Nothing else was wrong: the broker held the records, the worker was alive,
and Faust never retries. While a worker recovers it scores nothing, so every flow of every
partition it owns waits.

Faust's fetch path hands records on only if the partition is in its active set, the consumer
generation has not changed and the offset is not below its read offset; a record it drops
there still counts as read, so it is never fetched again (the same loss on the ``flows`` topic
is filled by :mod:`stream_ids.faust_fixes.offset_holes`). Which of these lost the records of
that run is not known: the log shows the symptom only. So the watch does not guess; when an active
changelog partition has records left to recover and none arrived for :data:`STALL_S`, it logs
what Faust's consumer holds for it (position, read offset, active or not) and seeks it back to
the first offset the recovery still needs, through Faust's own ``seek_wait`` (which also resets
the read offset) and ``resume_partitions``. Recovery ignores offsets it has applied already,
so reading a partition again cannot apply a record twice.

Upstream: faust-streaming/faust#155 (recovery waits forever: "No event received for active tp
... since recovery start"; also faust-streaming/faust#74). Delete this module once Faust
retries a stalled changelog partition itself.
"""

from __future__ import annotations

import asyncio
import logging
import time
from collections.abc import Awaitable, Callable, Iterable, Mapping
from dataclasses import dataclass
from typing import Any

from stream_ids.faust_fixes.offset_holes import CHECK_S

log = logging.getLogger(__name__)

# Faust's recovery reads a changelog partition as one stream of fetches; no record of a
# partition with records left for this long is not a slow broker (a busy one answers in < 1 s)
STALL_S = 10.0
# Under exactly-once the last offsets of a changelog can be transaction markers, which no
# record reaches; Faust's own check settles those after two empty 5 s polls, so it goes first
TRANSACTIONAL_STALL_S = 30.0


@dataclass(frozen=True)
class Stall:
    """An active changelog partition whose recovery stopped short of its highwater."""

    tp: Any
    have: int  # last offset recovered (-1: none)
    need: int  # highwater: the last offset to recover
    idle_s: float

    @property
    def resume_at(self) -> int:
        return max(self.have + 1, 0)


def find_stalls(
    active_tps: Iterable[Any],
    offsets: Mapping[Any, int | None],
    highwaters: Mapping[Any, int | None],
    last_event_at: Mapping[Any, float],
    started_at: float,
    now: float,
    stall_s: float = STALL_S,
) -> list[Stall]:
    """Active partitions with records left and no event for ``stall_s`` (oldest first)."""
    stalls = []
    for tp in active_tps:
        need, have = highwaters.get(tp), offsets.get(tp)
        if need is None or have is None or have >= need:
            continue
        idle = now - max(last_event_at.get(tp, started_at), started_at)
        if idle >= stall_s:
            stalls.append(Stall(tp, int(have), int(need), idle))
    return sorted(stalls, key=lambda stall: (-stall.idle_s, stall.tp))


class RecoveryWatch:
    """Checks a Faust app's recovery on a timer (see the module docstring).

    Reads ``app.tables.recovery``'s private progress (``active_offsets``,
    ``active_highwaters``, ``_active_events_received_at``, ``_recovery_started_at``):
    faust-streaming 0.15 has no public accessor for any of them.
    """

    def __init__(
        self,
        app: Any,
        stall_s: float | None = None,
        clock: Callable[[], float] = time.monotonic,
        rewind: Callable[[dict[Any, int]], Awaitable[None]] | None = None,
    ) -> None:
        self.app = app
        guarantee = getattr(app.conf.processing_guarantee, "value", app.conf.processing_guarantee)
        transactional = str(guarantee) == "exactly_once"
        self.stall_s = stall_s or (TRANSACTIONAL_STALL_S if transactional else STALL_S)
        self.clock = clock
        self.rewind = rewind or self._rewind
        self.rewound_at: dict[Any, float] = {}
        self.rewinds = 0  # partition rewinds since start, for tests and logs
        self.task: asyncio.Future[None] | None = None

    def stalls(self) -> list[Stall]:
        recovery = self.app.tables.recovery
        started = recovery._recovery_started_at
        if not recovery.in_recovery or started is None:
            self.rewound_at.clear()
            return []
        # (``app.rebalancing`` stays true until a recovery ends, so it cannot tell.) A stopped
        # flow or a newer generation: a rebalance is on, and its recovery starts afresh
        generation = recovery._generation_id
        if not self.app.consumer.flow_active or generation != self.app.consumer_generation_id:
            return []
        last_event_at = dict(recovery._active_events_received_at)
        for tp, at in self.rewound_at.items():  # a rewind restarts the partition's clock
            last_event_at[tp] = max(last_event_at.get(tp, at), at)
        return find_stalls(
            set(recovery.active_tps),
            recovery.active_offsets,
            recovery.active_highwaters,
            last_event_at,
            started,
            self.clock(),
            self.stall_s,
        )

    async def check(self) -> list[Stall]:
        """Rewind every stalled partition; returns what was rewound."""
        stalls = self.stalls()
        if not stalls:
            return []
        consumer = self.app.consumer
        for stall in stalls:
            log.warning(
                "changelog %s[%d]: recovery stalled %.0f s at offset %d of %d (consumer "
                "position %s, read offset %s, %s): reading it again from offset %d",
                stall.tp.topic,
                stall.tp.partition,
                stall.idle_s,
                stall.have,
                stall.need,
                await self._position(stall.tp),
                consumer._read_offset.get(stall.tp),
                "fetching" if stall.tp in (consumer._active_partitions or ()) else "not fetching",
                stall.resume_at,
            )
        await self.rewind({stall.tp: stall.resume_at for stall in stalls})
        now = self.clock()
        for stall in stalls:
            self.rewound_at[stall.tp] = now
        self.rewinds += len(stalls)
        return stalls

    def start(self) -> None:
        """Check every :data:`CHECK_S` from now until the app stops (idempotent).

        Not an ``app.timer``: Faust starts its timers only after the first recovery completed,
        and a first recovery can stall as well.
        """
        if self.task is None or self.task.done():
            self.task = asyncio.ensure_future(self._run())

    def stop(self) -> None:
        if self.task is not None:
            self.task.cancel()

    async def _run(self) -> None:
        while not self.app.should_stop:
            await asyncio.sleep(CHECK_S)
            try:
                await self.check()
            except asyncio.CancelledError:
                raise
            except Exception:  # a failed check must not end the watch; the next one retries
                log.exception("recovery watch check failed")

    async def _position(self, tp: Any) -> int | str:
        try:
            position = await self.app.consumer.position(tp)
        except Exception as error:  # only a diagnostic: the rewind goes on
            return f"unknown ({error!r})"
        return "none" if position is None else int(position)

    async def _rewind(self, offsets: dict[Any, int]) -> None:
        consumer = self.app.consumer
        await consumer.seek_wait(offsets)  # also drops or resets Faust's read offset
        consumer.resume_partitions(offsets)  # recovery fetches its active partitions
