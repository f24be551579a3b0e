"""The scoring agent's work per batch of ``flows`` events: the steps, top to bottom.

For a batch taken with ``stream.take_events(batch_size, within=max_wait_s)``,
:meth:`BatchScorer.process`:

0. holds the events back from Faust's ack until the batch is done
   (:func:`stream_ids.faust_fixes.held_acks.hold_back`) and admits them in offset order per
   partition; a hole left by Faust's recovery is read from Kafka and scored first
   (:class:`stream_ids.faust_fixes.hole_filling.HoleFiller`);
1. cuts the batch into chunks; per chunk, :meth:`BatchScorer.score_chunks` runs
   :func:`~stream_ids.worker.validate.validate_events` (good flows + dead letters, pure) and
   :meth:`~stream_ids.worker.publish.Publisher.dead_letters`;
2. :func:`~stream_ids.worker.features.model_inputs`: the saved transform, on the event loop;
3. :meth:`~stream_ids.worker.host_state.HostState.histories` (the table) and
   :meth:`~stream_ids.worker.score.ScoringPipeline.start`: windows and the model in the
   scoring thread, while the event loop goes on with the next chunk;
4. :meth:`~stream_ids.worker.score.ScoringPipeline.collect`, then
   :meth:`~stream_ids.worker.host_state.HostState.collect` and
   :meth:`~stream_ids.worker.publish.Publisher.verdicts`: one verdict per flow, alerts;
5. :meth:`~stream_ids.worker.host_state.HostState.write`: each host's new state once per
   batch, expiry and budget tombstones; then the events are released for the ``take_events``
   loop to ack (the offsets commit).

Every input flow therefore ends as exactly one verdict or exactly one dead-letter record.
"""

from __future__ import annotations

import asyncio
import gc
import logging
from collections import deque
from collections.abc import Awaitable, Callable, Mapping
from concurrent.futures import ThreadPoolExecutor
from typing import Any, NamedTuple

from stream_ids.faust_fixes.held_acks import hold_back, release
from stream_ids.faust_fixes.hole_filling import HoleFiller
from stream_ids.faust_fixes.offset_holes import OffsetGuard
from stream_ids.rolling import RollingStats
from stream_ids.tables import RestoreCounter
from stream_ids.topics import Topics
from stream_ids.worker.features import model_inputs
from stream_ids.worker.host_state import HostState
from stream_ids.worker.protocols import ScoringModel
from stream_ids.worker.publish import Publisher
from stream_ids.worker.score import Chunk, Running, Scored, ScoringPipeline
from stream_ids.worker.validate import validate_events

log = logging.getLogger(__name__)

# Flows per pipelined chunk of a batch: large enough that the model runs at its efficient
# batch size (docs/performance.md: >= 512), small enough to overlap parsing and scoring.
CHUNK_FLOWS = 2048
# Chunks handed to the scoring thread at once: the one it scores and the next, queued, so it
# never waits for the event loop to hand over the next one (docs/performance.md section 12).
PIPELINE_DEPTH = 2


class Tail(NamedTuple):
    """A batch whose last chunks are still being scored when :meth:`BatchScorer.process`
    returns."""

    running: tuple[Running, ...]
    events: list[Any]  # held back until its verdicts are published, then acked
    filled: list[Any]  # messages of records the agent read itself


class BatchScorer:
    """Scores batches of raw ``flows`` events with a loaded :class:`ScoringModel`."""

    def __init__(
        self,
        model: ScoringModel,
        table: Any,
        topics: Topics,
        stats: RollingStats,
        metrics: Any = None,
        executor: ThreadPoolExecutor | None = None,
        split: bool = True,
        batch_publish: bool = True,
        freeze_gc: bool = True,
        committed_offsets: Callable[[], Mapping[int, int]] | None = None,
        fill: Callable[[int, int, int], Awaitable[list[Any]]] | None = None,
        ack_filled: Callable[[list[Any]], None] | None = None,
        ack_offsets: Callable[[int, int, int], None] | None = None,
        lookup_committed: Callable[[set[int]], Awaitable[dict[int, int]]] | None = None,
        host_ttl_s: float | None = None,
        max_hosts: int | None = None,
        restore_counter: RestoreCounter | None = None,
        assigned_partitions: Callable[[], set[int] | None] | None = None,
    ) -> None:
        self.model = model
        if split and model.split is None:
            model.enable_split()
        model.warm_up()  # trace the model's batch shapes now, not on live flows
        if freeze_gc:
            # The loaded TensorFlow/Keras/Faust objects (~460k) are long-lived: move them out of
            # the collector's reach, or every full collection rescans them and stalls the event
            # loop and the executor (GIL) for ~0.5 s here, which showed up as latency tails.
            gc.freeze()
        self.pipeline = ScoringPipeline(model, executor, host_ttl_s)
        self.host_state = HostState(
            table,
            stats,
            self.pipeline.state_width,
            self.pipeline.state_tag,
            metrics=metrics,
            committed_offsets=committed_offsets,
            host_ttl_s=host_ttl_s,
            max_hosts=max_hosts,
            restore_counter=restore_counter,
            assigned_partitions=assigned_partitions,
        )
        self.publisher = Publisher(
            topics,
            stats,
            float(model.threshold),
            str(model.model_version),
            metrics=metrics,
            batch_publish=batch_publish,
        )
        self.table = table
        self.topics = topics
        self.stats = stats
        self.metrics = metrics
        self.flows_in = 0
        self.dead_letters = 0
        self.redelivered = 0
        self.ack_filled = ack_filled
        # in-order admission per partition; holes are read from Kafka (see faust_fixes)
        self.holes = (
            HoleFiller(fill, committed_offsets, ack_filled, ack_offsets, lookup_committed)
            if fill is not None
            else None
        )
        self.lock = asyncio.Lock()  # the agent and the stall timer both score batches
        # pipelining inside a batch (see process): target flows per chunk, running estimate
        self.chunk_flows = CHUNK_FLOWS
        self.flows_per_event = 1.0
        # the previous batch's last chunk, still scoring (process(overlap=True))
        self.tail: Tail | None = None
        self.tail_task: asyncio.Future[None] | None = None
        self.tail_error: BaseException | None = None

    @property
    def guard(self) -> OffsetGuard | None:
        return self.holes.guard if self.holes is not None else None

    @property
    def threshold(self) -> float:
        """The threshold verdicts are judged with (a calibration change sets it)."""
        return self.publisher.threshold

    @threshold.setter
    def threshold(self, value: float) -> None:
        self.publisher.threshold = value

    # -- one batch -----------------------------------------------------------------------------
    async def process(self, events: list[Any], overlap: bool = False) -> None:
        """Score one batch of events; returns when every verdict/dead letter is published,
        or with ``overlap``, once its last chunk is being scored (see below).

        No event of the batch can be acked before this returns: ``stream.take_events`` acks its
        batch in a ``finally`` that Faust also runs when it stops the stream, possibly while
        the batch is still being scored. So every event is held back (:func:`hold_back`) while
        the batch is scored and released when all its outcomes are published; the
        ``take_events`` loop then acks them as usual.

        With ``overlap`` (the agent) the pipeline goes on across batches: the call returns while
        the batch's last chunk is still in the scoring thread, so the agent takes the next batch
        and validates its first chunk meanwhile; that chunk is scored after the previous batch's
        last one is published and its host states written. Its events are then acked (the
        ``take_events`` loop has passed them by, still held back). When no batch comes first,
        a task publishes it as soon as its scores are ready (:meth:`finish_tail`). Without this
        a batch waited for the whole previous one: near half load that chain was most of the
        latency (docs/performance.md).
        """
        hold_back(events)  # before any wait: a stop now must not ack them (see above)
        async with self.lock:
            filled: list[Any] = []
            stale: list[Any] = []
            try:
                if self.tail_error is not None:  # the previous batch's end failed: crash here
                    error, self.tail_error = self.tail_error, None
                    raise error
                if self.holes is not None:
                    events, filled, stale = await self.holes.admit(events)
                running = await self.score_chunks(events, overlap and self.ack_filled is not None)
            except BaseException:
                # Cancelled (a stop) or failed mid-batch: nothing of the batch is acked, and
                # the next batches start again from the committed offsets.
                self.drop_state()
                raise
            # stale copies were scored already (or are committed): their ack is harmless and
            # Faust's commit needs every offset acked
            done = [e for e in events + stale if not getattr(e, "filled", False)]
            filled_messages = [event.message for event in filled]
            if running is None:
                if filled_messages and self.ack_filled is not None:
                    self.ack_filled(filled_messages)
                release(done)
            else:
                self.tail = Tail(running, done, filled_messages)
                self.tail_task = asyncio.ensure_future(self.finish_tail(self.tail))

    async def score_chunks(
        self, events: list[Any], overlap: bool = False
    ) -> tuple[Running, ...] | None:
        """Score ``events`` in chunks; with ``overlap`` return the last chunks still running.

        Chunks go to the scoring thread as soon as they are validated, up to
        :data:`PIPELINE_DEPTH` at once, and are collected and published in order (FIFO): while
        the thread scores chunk *i* (TensorFlow releases the GIL), the event loop validates
        chunk *i + 1* and publishes chunk *i - 1*. Per-host order is the same as one big batch
        (:class:`ScoringPipeline`).
        """
        tail, self.tail = self.tail, None  # the previous batch's last chunks (overlap)
        step = max(1, int(self.chunk_flows / self.flows_per_event))
        inflight: deque[Running] = deque(tail.running if tail else ())
        tail_left = len(inflight)
        try:
            for start in range(0, len(events), step):
                part = events[start : start + step]
                chunk = await self.validate(part)  # overlaps the running chunks' scoring
                if chunk is None:
                    continue
                flows = len(chunk.valid.flows)
                self.flows_per_event = 0.5 * self.flows_per_event + 0.5 * flows / len(part)
                inflight.append(self.start_scoring(chunk))
                while len(inflight) >= PIPELINE_DEPTH:
                    # the thread goes on with the queued chunk while this one is published
                    await self.publish(await self.finish_scoring(inflight.popleft()))
                    tail_left -= 1
                    if tail is not None and tail_left == 0:
                        # the previous batch is complete: its states, its acks (this batch's
                        # chunks are still scoring: their states are not collected yet)
                        await self.write_state()
                        self.ack_tail(tail)
                        tail = None
            if tail is not None:  # too few chunks of this batch: finish the previous one alone
                for _ in range(tail_left):
                    await self.publish(await self.finish_scoring(inflight.popleft()))
                await self.write_state()
                self.ack_tail(tail)
                tail = None
            if inflight and overlap:
                return tuple(inflight)
            while inflight:
                await self.publish(await self.finish_scoring(inflight.popleft()))
        except BaseException:
            for running in inflight:  # queued chunks need not run (the caller drops state)
                running.future.cancel()
            raise
        await self.write_state()
        return None

    # -- the steps of a chunk ------------------------------------------------------------------
    async def validate(self, events: list[Any]) -> Chunk | None:
        """Steps 1-2: the good flows with their model inputs (None: none); dead letters sent."""
        valid, rejected = validate_events(events)
        self.flows_in += len(valid.flows) + len(rejected)
        if self.metrics is not None:
            self.metrics.count_consumed(len(valid.flows) + len(rejected))
        await self.publisher.dead_letters(rejected)
        self.dead_letters += len(rejected)
        if not valid.flows:
            return None
        return Chunk(valid, model_inputs(self.model.transform, valid.flows))

    def start_scoring(self, chunk: Chunk) -> Running:
        """Step 3: the chunk's hosts' histories, then the scoring thread."""
        histories = self.host_state.histories(chunk.valid.keys)
        return self.pipeline.start(chunk, histories, self.host_state.committed())

    async def finish_scoring(self, running: Running) -> Scored:
        """Step 4a: the chunk's scores; its host states pending until :meth:`write_state`."""
        computed = await self.pipeline.collect(running)
        valid = running.chunk.valid
        self.host_state.collect(valid, computed.updated)
        if computed.redelivered:
            self.redelivered += computed.redelivered
            log.info(
                "%d redelivered flows scored again with their original windows",
                computed.redelivered,
            )
        return Scored(valid.flows, valid.keys, computed.scores, computed.lengths, computed.seconds)

    async def publish(self, scored: Scored) -> None:
        """Step 4b: verdicts and alerts."""
        await self.publisher.verdicts(scored)

    async def write_state(self) -> None:
        """Step 5: the batch's host states (and tombstones) to the table, once per host."""
        await self.host_state.write()

    # -- the batch still scoring (overlap) -----------------------------------------------------
    def drop_state(self) -> None:
        """Forget what is not published: the guard's positions, unwritten host states, a tail.

        Their events stay unacked; the guard starts again from the committed offsets, so this
        worker (a hole) or the partition's next owner scores them again.
        """
        if self.holes is not None:
            self.holes.guard.reset()
        self.host_state.pending.clear()
        self.pipeline.forget()  # chunks still queued from before read and write nothing
        self.tail = None

    def abandon_tail(self) -> None:
        """The agent stops: a batch still being scored is left unacked for the next owner."""
        if self.tail_task is not None:
            self.tail_task.cancel()
        self.tail_task = None
        if self.tail is not None:
            self.drop_state()

    async def finish_tail(self, tail: Tail) -> None:
        """Publish ``tail`` once scored, unless the next batch did that first."""
        await asyncio.wait([running.future for running in tail.running])
        async with self.lock:
            if self.tail is not tail:
                return
            self.tail = None
            try:
                for running in tail.running:
                    await self.publish(await self.finish_scoring(running))
                await self.write_state()  # only the tail's: nothing later has finished scoring
                self.ack_tail(tail)
            except asyncio.CancelledError:
                self.drop_state()
                raise
            except Exception as error:  # the agent crashes with it at its next batch
                log.exception("publishing a batch failed")
                self.drop_state()
                self.tail_error = error

    def ack_tail(self, tail: Tail) -> None:
        # the take_events loop passed these by while they were held back: acked here
        if self.ack_filled is not None:  # always set when overlap is on (process)
            self.ack_filled(tail.filled + [event.message for event in tail.events])

    # -- timers (Faust's recovery races, see faust_fixes) --------------------------------------
    async def fill_stalled(self, read: Mapping[int, int]) -> None:
        """Read and score what partitions read but silent never delivered."""
        if self.holes is not None:
            await self.holes.fill_stalled(read, self.process)

    async def unblock_commits(self, lowest_acked: Callable[[], Mapping[int, int]]) -> None:
        """Ack again the offsets Faust's commit waits for but this worker is past."""
        if self.holes is None:
            return
        async with self.lock:  # no batch in flight: every offset below the expected one is done
            if self.tail is not None:  # a batch is still being scored: ask again later
                return
            self.holes.unblock_commits(lowest_acked())
