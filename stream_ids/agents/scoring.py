"""The scoring agent's work per batch of ``flows`` events.

For a batch taken with ``stream.take_events(batch_size, within=max_wait_s)``:

0. events are held back from Faust's ack until the batch is done, and admitted in offset
   order per partition; a hole left by Faust's recovery is read from Kafka and scored first
   (:mod:`stream_ids.agents.continuity`);
1. every message is validated into columns (:func:`stream_ids.records.parse_columns`; a
   schema-3 micro-batch is checked with numpy, column by column); a bad flow becomes one
   ``flows-dlq`` record (reason code, detail, base64 raw bytes and key,
   topic/partition/offset); the good flows' features go through the saved transform here, on
   the event loop (see :meth:`BatchScorer.transform_rows` for why not in the executor);
2. the good flows' hosts' histories are read from the table (event loop thread), with a
   snapshot of the committed offsets of ``flows``; a chunk queued behind another in the
   scoring thread takes the newer states that one wrote from the thread's own record;
3. window building (table history + earlier flows of the same host in the batch, one numpy
   gather) and the model run in a single-thread executor, so the event loop never blocks.
   With a split model (:meth:`stream_ids.scorer.Scorer.enable_split`) the table holds each
   host's last flow *encodings*: the encoder runs once per new flow, the LSTM head over the
   cached window. Each
   flow carries its source position, so flows Kafka redelivers after a crash or rebalance
   (already in the restored state) are scored with the window they had the first time
   (:func:`stream_ids.tables.build_batch_windows`);
4. one verdict per flow goes to ``verdicts`` and the attacks to ``alerts``; each host's new
   history is written back to the table once per batch (one changelog record per host);
5. the batch's counts go to the worker's rolling statistics, and its events are released for
   the ``take_events`` loop to ack (the offsets commit).

Every input flow therefore ends as exactly one verdict or exactly one dead-letter record.
"""

from __future__ import annotations

import asyncio
import gc
import logging
import threading
import time
from collections import deque
from collections.abc import Awaitable, Callable, Mapping
from concurrent.futures import ThreadPoolExecutor
from typing import Any, NamedTuple

import numpy as np
import orjson
import pandas as pd

from stream_ids.agents.continuity import OffsetGuard
from stream_ids.errors import InvalidRecordError
from stream_ids.host_expiry import HostIndex
from stream_ids.records import (
    FlowColumns,
    check_rows,
    dead_letter,
    element_raw,
    parse_columns,
    row_error,
)
from stream_ids.rolling import Counts, RollingStats
from stream_ids.schema import ATTACK, FEATURE_NAMES, UNLABELLED, label_class
from stream_ids.tables import (
    HOSTLESS_KEY,
    HostHistory,
    build_batch_windows,
    decode_history,
    encode_history,
    source_position,
    source_positions,
    state_summary,
    table_store,
)
from stream_ids.topics import Topics

log = logging.getLogger(__name__)

# Flows per pipelined chunk of a batch: large enough that the model runs at its efficient
# batch size (docs/performance.md: >= 512), small enough to overlap parsing and scoring.
CHUNK_FLOWS = 2048
# Chunks handed to the scoring thread at once: the one it scores and the next, queued, so it
# never waits for the event loop to hand over the next one (docs/performance.md section 12).
PIPELINE_DEPTH = 2


def hold_back(events: list[Any]) -> None:
    """Keep ``events`` from being acked until :func:`release`.

    Faust commits an offset once its message is acked; ``Message.ack`` is a no-op for a message
    already marked acked, so marking it here means the ``stream.take_events`` loop, which acks
    every event of a batch when the batch is done *or abandoned*, never hands it to the
    consumer's commit. (With ``stream_wait_empty`` off, nothing waits for such messages.)
    """
    for event in events:
        event.message.acked = True


def release(events: list[Any]) -> None:
    """Undo :func:`hold_back`: the ``take_events`` loop's ack counts again."""
    for event in events:
        event.message.acked = False


class Parsed(NamedTuple):
    """The good flows of a chunk: columns, host keys, transformed rows, source positions."""

    flows: FlowColumns
    keys: list[bytes]
    transformed: np.ndarray  # (n, model inputs) float32: the feature transform, already applied
    positions: np.ndarray  # (n,) int64 source positions (tables.source_position), -1 unknown
    partitions: np.ndarray  # (n,) int64 ``flows`` partitions, -1 unknown
    times: np.ndarray  # (n,) float64 flow times (the flows' timestamps)


class Running(NamedTuple):
    """A chunk handed to the scoring thread."""

    future: asyncio.Future[Any]
    parsed: Parsed
    sequence: int  # the chunk's number, names its host states in ``BatchScorer.unmerged``


class Tail(NamedTuple):
    """A batch whose last chunks are still being scored when :meth:`BatchScorer.process`
    returns."""

    running: tuple[Running, ...]
    events: list[Any]  # held back until its verdicts are published, then acked
    filled: list[Any]  # messages of records the agent read itself


class BatchScorer:
    """Scores batches of raw ``flows`` events with a loaded :class:`~stream_ids.scorer.Scorer`."""

    def __init__(
        self,
        model: Any,
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
        restore_counter: Any = None,
    ) -> None:
        self.model = model
        if split and getattr(model, "split", None) is None and hasattr(model, "enable_split"):
            model.enable_split()
        if hasattr(model, "warm_up"):
            model.warm_up()  # trace the model's batch shapes now, not on live flows
        if freeze_gc:
            # The loaded TensorFlow/Keras/Faust objects (~460k) are long-lived: move them out of
            # the collector's reach, or every full collection rescans them and stalls the event
            # loop and the executor (GIL) for ~0.5 s here, which showed up as latency tails.
            gc.freeze()
        self.table = table
        self.state = StateWriter(table)
        self.topics = topics
        self.stats = stats
        self.metrics = metrics
        self.executor = executor or ThreadPoolExecutor(1, thread_name_prefix="scoring")
        self.window = int(model.window)
        # Split scoring (cached per-flow encodings) when the model supports it.
        self.split_scoring = bool(getattr(model, "split", None) is not None)
        self.n_features = int(model.state_width) if self.split_scoring else int(model.n_inputs)
        self.state_tag = bytes(getattr(model, "state_tag", b"")) if self.split_scoring else b""
        self.threshold = float(model.threshold)
        self.model_version = str(model.model_version)
        self.flows_in = 0
        self.dead_letters = 0
        self.redelivered = 0
        # partition -> committed offset of ``flows`` (bounds the per-host state; see tables)
        self.committed_offsets = committed_offsets
        # in-order admission per partition; holes are read from Kafka (see continuity)
        self.fill = fill
        self.ack_filled = ack_filled
        self.ack_offsets = ack_offsets
        self.lookup_committed = lookup_committed
        self.guard = OffsetGuard() if fill is not None else None
        self.lock = asyncio.Lock()  # the agent and the stall timer both score batches
        # host states of the batch in progress, written to the table once at its end
        self.pending_state: dict[bytes, HostHistory] = {}
        # host states as the scoring thread last wrote them (host -> (chunk sequence, state)):
        # a chunk queued behind another reads its hosts' newest state from here, as the one
        # before it may not be collected by the event loop yet (see compute_queued);
        # ``state_generation`` changes when state is dropped
        self.unmerged: dict[bytes, tuple[int, HostHistory]] = {}
        self.unmerged_lock = threading.Lock()
        self.state_generation = 0
        self.chunk_sequence = 0  # the last chunk handed to the scoring thread
        self.read_sequence = 0  # the last chunk that has read its states there
        # pipelining inside a batch (see process): target flows per chunk, running estimate
        self.chunk_flows = CHUNK_FLOWS
        self.flows_per_event = 1.0
        # verdicts/alerts go out as whole record batches per partition (see BatchPublisher)
        self._batches: BatchPublisher | bool | None = None if batch_publish else False
        # the previous batch's last chunk, still scoring (process(overlap=True))
        self.tail: Tail | None = None
        self.tail_task: asyncio.Future[None] | None = None
        self.tail_error: BaseException | None = None
        # bounded host state (stream_ids.host_expiry): TTL of flow time (None: none, windows
        # span any gap), host budget (None: unbounded)
        self.host_ttl_s = host_ttl_s
        self.max_hosts = max_hosts
        self.hosts = HostIndex()
        self.partitions_seen: set[int] = set()  # since the last assignment: ours to expire
        self.hosts_expired = 0
        self.hosts_evicted = 0
        self.assigned_at: float | None = time.monotonic()  # until the first batch is written
        self.restore: tuple[float, int] | None = None  # (seconds, hosts) at the last one
        # changelog records read by the last restore, and when it ended (tables.RestoreCounter)
        self.restore_counter = restore_counter

    # -- validation ----------------------------------------------------------------------------
    def split(self, events: list[Any]) -> tuple[Parsed, list[tuple[bytes | None, dict[str, Any]]]]:
        """The good flows (with keys, transformed features, sources) and dead-letter pairs."""
        parts: list[FlowColumns] = []
        keys: list[bytes] = []
        positions: list[np.ndarray] = []
        partitions: list[int] = []
        origins: list[Any] = []  # the message of each good flow (for a late rejection)
        rejected: list[tuple[bytes | None, dict[str, Any]]] = []

        def reject(message: Any, error: InvalidRecordError, raw: bytes | None) -> None:
            rejected.append(
                (
                    message.key,
                    dead_letter(
                        error, raw, message.key, message.topic, message.partition, message.offset
                    ),
                )
            )

        for event in events:
            message = event.message
            key = message.key
            if key is None:
                reject(
                    message,
                    InvalidRecordError("key_mismatch", "the message has no key"),
                    message.value,
                )
                continue
            columns, bad = parse_columns(message.value, key, check=False)
            for _element, error, raw in bad:
                reject(message, error, raw)
            count = len(columns)
            if not count:
                continue
            parts.append(columns)
            keys.extend([key] * count)
            offset = message.offset if message.offset is not None else -1
            positions.append(
                source_positions(offset, columns.element)
                if offset >= 0
                else np.full(count, -1, dtype=np.int64)
            )
            partition = message.partition if message.partition is not None else -1
            partitions.extend([partition] * count)
            origins.extend([message] * count)
        flows = FlowColumns.concat(parts)
        where = np.concatenate(positions) if positions else np.zeros(0, dtype=np.int64)
        bad_rows = check_rows(flows.values) if len(flows) else np.zeros(0, dtype=bool)
        if bad_rows.any():
            rows = flows.values.tolist()
            for index in np.flatnonzero(bad_rows).tolist():
                message = origins[index]
                raw = element_raw(message.value, flows.element[index])
                reject(message, row_error(tuple(rows[index])), raw)
            good = ~bad_rows
            flows = flows.select(good)
            keys = [key for key, ok in zip(keys, good.tolist(), strict=True) if ok]
            partitions = [p for p, ok in zip(partitions, good.tolist(), strict=True) if ok]
            where = where[good]
        parsed = Parsed(
            flows,
            keys,
            self.transform_rows(flows),
            where,
            np.asarray(partitions, np.int64),
            np.asarray(flows.timestamp, dtype=np.float64),
        )
        return parsed, rejected

    def transform_rows(self, flows: FlowColumns) -> np.ndarray:
        """The model inputs of ``flows``: the saved feature transform, vectorised.

        Applied here, on the event loop, not in the scoring thread: numpy releases the GIL for
        each operation on a large array, and a thread that gives the GIL up must then wait for
        the busy event loop to hand it back (up to the 5 ms switch interval) each time; ~15
        such operations per chunk made the transform cost ~20x its own time in the scoring
        thread (docs/performance.md section 8).
        """
        protocol = np.array(
            [np.nan if value is None else value for value in flows.protocol], dtype=np.float64
        )
        transform = self.model.transform
        if hasattr(transform, "transform_arrays"):
            columns = self.transform_columns(transform)
            values = flows.values if columns is None else flows.values[:, columns]
            return np.asarray(transform.transform_arrays(values, protocol), dtype=np.float32)
        # a transform without the array entry point (test doubles)
        frame = pd.DataFrame(flows.values, columns=list(FEATURE_NAMES))
        frame["protocol"] = protocol
        return np.asarray(transform.transform_many(frame), dtype=np.float32)

    # -- scoring (executor thread) -------------------------------------------------------------
    @staticmethod
    def transform_columns(transform: Any) -> list[int] | None:
        """Column indices of the transform's features in FEATURE_NAMES (None: the same order)."""
        names = list(transform.feature_names)
        if names == list(FEATURE_NAMES):
            return None
        index = {name: position for position, name in enumerate(FEATURE_NAMES)}
        return [index[name] for name in names]

    def compute(
        self,
        parsed: Parsed,
        histories: dict[bytes, HostHistory],
        committed: Mapping[int, int] | None,
    ) -> tuple[np.ndarray, np.ndarray, dict[bytes, HostHistory], int, float]:
        started = time.perf_counter()
        transformed = parsed.transformed
        # one encoder pass for the batch's new flows (split model); the older ones come from
        # the table
        rows = self.model.encode(transformed) if self.split_scoring else transformed
        batch = build_batch_windows(
            rows,
            parsed.keys,
            histories,
            self.window,
            positions=parsed.positions,
            partitions=parsed.partitions,
            committed=committed,
            times=parsed.times,
            ttl=self.host_ttl_s,
        )
        if self.split_scoring:
            scores = self.model.score_encoded(batch.windows, batch.lengths)
        else:
            scores = self.model.score_windows(batch.windows)
        seconds = time.perf_counter() - started
        return scores, batch.lengths, batch.updated, batch.redelivered, seconds

    # -- one batch -----------------------------------------------------------------------------
    async def process(self, events: list[Any], overlap: bool = False) -> None:
        """Score one batch of events; returns when every verdict/dead letter is published,
        or with ``overlap``, once its last chunk is being scored (see below).

        No event of the batch can be acked before this returns: ``stream.take_events`` acks its
        batch in a ``finally`` that Faust also runs when it stops the stream, possibly while
        the batch is still being scored; that committed flows that never got a verdict (a
        graceful scale-in lost 243 flows). So every event is held back (:func:`hold_back`)
        while the batch is scored and released when all its outcomes are published; the
        ``take_events`` loop then acks them as usual. Records missing in front of an event (an
        offset hole) are read from Kafka and scored first (:mod:`stream_ids.agents.continuity`).

        A large batch (host micro-batches carry ~30 flows per event) is cut into chunks of about
        ``chunk_flows`` flows and pipelined: while the executor scores chunk *i* (TensorFlow
        releases the GIL), the event loop parses chunk *i + 1* and publishes chunk *i - 1*.
        Chunk *i + 1* reads the host table only after chunk *i*'s histories are written, so
        per-host order is the same as one big batch.

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
                if self.guard is not None:
                    committed = dict(self.committed_offsets() if self.committed_offsets else {})
                    unknown = self.guard.unknown(events, committed)
                    if unknown and self.lookup_committed is not None:
                        # Faust has not read them yet (the first batch can come before its
                        # seek to the committed offsets): without a start, a hole right at the
                        # start would go unseen
                        looked_up = await self.lookup_committed(unknown)
                        committed.update(looked_up)
                        self.guard.start_at(looked_up)  # asked once per (re)start
                    holes = self.guard.holes(events, committed)
                    if holes and self.fill is not None:
                        events, filled = await self.with_filled(events, holes)
                    events, stale = self.guard.admit(events, committed)
                running = await self._process(events, overlap and self.ack_filled is not None)
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

    def drop_state(self) -> None:
        """Forget what is not published: the guard's positions, unwritten host states, a tail.

        Their events stay unacked; the guard starts again from the committed offsets, so this
        worker (a hole) or the partition's next owner scores them again.
        """
        if self.guard is not None:
            self.guard.reset()
        self.pending_state.clear()
        with self.unmerged_lock:  # chunks still queued from before read and write nothing
            self.state_generation += 1
            self.unmerged.clear()
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
                await self.complete_tail(tail)
            except asyncio.CancelledError:
                self.drop_state()
                raise
            except Exception as error:  # the agent crashes with it at its next batch
                log.exception("publishing a batch failed")
                self.drop_state()
                self.tail_error = error

    async def complete_tail(self, tail: Tail) -> None:
        for running in tail.running:
            await self.publish(*(await self.finish_scoring(running)))
        await self.write_state()  # only the tail's states: nothing later has finished scoring
        self.ack_tail(tail)

    def ack_tail(self, tail: Tail) -> None:
        # the take_events loop passed these by while they were held back: acked here
        if self.ack_filled is not None:  # always set when overlap is on (process)
            self.ack_filled(tail.filled + [event.message for event in tail.events])

    async def with_filled(
        self, events: list[Any], holes: list[tuple[int, int, int]]
    ) -> tuple[list[Any], list[Any]]:
        """``events`` with each hole's records read from Kafka in front of the hole's end."""
        inserts: dict[tuple[int, int], list[Any]] = {}
        filled: list[Any] = []
        for partition, start, end in holes:
            records = await self.fill(partition, start, end) if self.fill is not None else []
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
        if self.guard is not None:
            self.guard.filled += len(filled)
        return merged, filled

    async def fill_stalled(self, read: Mapping[int, int]) -> None:
        """Read and score what partitions read but silent never delivered (a timer)."""
        if self.guard is None or self.fill is None:
            return
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
                await self.process(records)
                if self.ack_filled is not None:
                    self.ack_filled([event.message for event in records])

    async def unblock_commits(self, lowest_acked: Callable[[], Mapping[int, int]]) -> None:
        """Ack again the offsets Faust's commit waits for but this worker is past (a timer)."""
        if self.guard is None or self.ack_offsets is None or self.committed_offsets is None:
            return
        async with self.lock:  # no batch in flight: every offset below the expected one is done
            if self.tail is not None:  # a batch is still being scored: ask again later
                return
            blocked = self.guard.blocked_commits(self.committed_offsets(), lowest_acked())
            for partition, start, end in blocked:
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

    async def _process(
        self, events: list[Any], overlap: bool = False
    ) -> tuple[Running, ...] | None:
        """Score ``events`` in chunks; with ``overlap`` return the last chunks still running.

        Chunks go to the scoring thread as soon as they are validated, up to
        :data:`PIPELINE_DEPTH` at once, and are collected and published in order (FIFO). A
        chunk queued behind another reads the host states that one wrote from
        ``self.unmerged`` (the scoring thread runs one chunk after the other), so per-host
        order is the same as one big batch.
        """
        tail, self.tail = self.tail, None  # the previous batch's last chunks (overlap)
        step = max(1, int(self.chunk_flows / self.flows_per_event))
        inflight: deque[Running] = deque(tail.running if tail else ())
        tail_left = len(inflight)
        try:
            for start in range(0, len(events), step):
                part = events[start : start + step]
                parsed = await self.validate(part)  # overlaps the running chunks' scoring
                if not parsed.flows:
                    continue
                self.flows_per_event = 0.5 * self.flows_per_event + 0.5 * len(parsed.flows) / len(
                    part
                )
                inflight.append(self.start_scoring(parsed))
                while len(inflight) >= PIPELINE_DEPTH:
                    # the thread goes on with the queued chunk while this one is published
                    await self.publish(*(await self.finish_scoring(inflight.popleft())))
                    tail_left -= 1
                    if tail is not None and tail_left == 0:
                        # the previous batch is complete: its states, its acks (this batch's
                        # chunks are still scoring: their states are not collected yet)
                        await self.write_state()
                        self.ack_tail(tail)
                        tail = None
            if tail is not None:  # too few chunks of this batch: finish the previous one alone
                for _ in range(tail_left):
                    await self.publish(*(await self.finish_scoring(inflight.popleft())))
                await self.write_state()
                self.ack_tail(tail)
                tail = None
            if inflight and overlap:
                return tuple(inflight)
            while inflight:
                await self.publish(*(await self.finish_scoring(inflight.popleft())))
        except BaseException:
            for running in inflight:  # queued chunks need not run (the caller drops state)
                running.future.cancel()
            raise
        await self.write_state()
        return None

    async def write_state(self) -> None:
        """One table (changelog) write per host per batch, not per chunk.

        A busy host's state holds up to MAX_KEPT encodings; rewritten for each ~2,048-flow
        chunk it made lz4 compression of the changelog 22% of the event loop (py-spy).
        Written before the batch's events are released for acking, as before; the states and
        the tombstones of dropped hosts go out as whole record batches (:class:`StateWriter`).
        """
        if self.assigned_at is not None:
            self.index_restored_hosts()
        touch = self.hosts.touch
        tag = self.state_tag
        records: list[tuple[bytes, bytes | None, int]] = []
        for key, history in self.pending_state.items():
            records.append((key, encode_history(history, tag), history.partition))
            touch(key, history.partition, history.newest_time(), int(history.positions[-1]))
        self.pending_state.clear()
        records.extend(self.bound_state())
        await self.state.write(records)

    def index_restored_hosts(self) -> None:
        """After a (re)assignment: index the hosts the table holds (restored from the
        changelog), once, at the first batch boundary; records how long the restore took."""
        started, self.assigned_at = self.assigned_at, None
        self.hosts.clear()
        for key, raw in list(self.state.store.items()):
            summary = state_summary(raw, self.state_tag)
            if summary is not None:
                self.hosts.touch(key, *summary)
        seconds = time.monotonic() - started if started is not None else 0.0
        self.restore = (seconds, len(self.hosts))
        counter = self.restore_counter
        records = int(counter.records) if counter is not None else 0
        recovered = None
        if counter is not None and counter.recovered_at is not None and started is not None:
            recovered = max(0.0, counter.recovered_at - started)
        log.info(
            "%d hosts in state at the first batch, %.1f s after the assignment (changelog "
            "recovery: %d records, %s s)",
            len(self.hosts),
            seconds,
            records,
            "?" if recovered is None else f"{recovered:.1f}",
        )
        self.stats.set_restore(seconds, len(self.hosts), records)
        if self.metrics is not None:
            self.metrics.set_restore(seconds, len(self.hosts), records, recovered)

    def reset_hosts(self) -> None:
        """Partitions were (re)assigned: the index is rebuilt at the next batch boundary."""
        self.assigned_at = time.monotonic()
        self.partitions_seen.clear()
        if self.restore_counter is not None:
            self.restore_counter.reset()

    def bound_state(self) -> list[tuple[bytes, None, int]]:
        """At a batch boundary: expire idle hosts (a sweep when due) and keep the budget.

        Only hosts of partitions this worker scored since its last assignment are dropped;
        returns their deletions (key, None, partition) for :meth:`StateWriter.write`, which
        removes the keys and writes changelog tombstones.
        """
        expired: list[bytes] = []
        evicted: list[bytes] = []
        drops: list[tuple[bytes, None, int]] = []
        if self.host_ttl_s is not None and self.hosts.sweep_due(self.host_ttl_s):
            offsets = self.committed_offsets() if self.committed_offsets is not None else {}
            committed = {
                partition: source_position(offset)
                for partition, offset in offsets.items()
                if partition in self.partitions_seen
            }
            expired = self.hosts.expired(self.host_ttl_s, committed)
            drops.extend(self.hosts.pop_partitions(expired))
        if self.max_hosts is not None and len(self.hosts) > self.max_hosts:
            evicted = self.hosts.over_budget(self.max_hosts, self.partitions_seen)
            drops.extend(self.hosts.pop_partitions(evicted))
        self.hosts_expired += len(expired)
        self.hosts_evicted += len(evicted)
        if expired or evicted:
            log.info(
                "host state: %d idle hosts expired, %d least recently seen evicted; %d kept",
                len(expired),
                len(evicted),
                len(self.hosts),
            )
        if self.metrics is not None:
            self.metrics.set_host_state(len(self.hosts), len(expired), len(evicted))
        self.stats.set_host_state(len(self.hosts), len(expired), len(evicted))
        return drops

    async def validate(self, events: list[Any]) -> Parsed:
        parsed, rejected = self.split(events)
        self.flows_in += len(parsed.flows) + len(rejected)
        if self.metrics is not None:
            self.metrics.count_consumed(len(parsed.flows) + len(rejected))
        for key, record in rejected:
            await self.topics.dead_letter.send(key=key, value=orjson.dumps(record))
            if self.metrics is not None:
                self.metrics.count_dead_letter(record["reason"])
        self.dead_letters += len(rejected)
        return parsed

    def start_scoring(self, parsed: Parsed) -> Running:
        histories = {}
        store = self.state.store
        for key in set(parsed.keys):
            if key != HOSTLESS_KEY:
                pending = self.pending_state.get(key)
                if pending is not None:  # written by an earlier chunk of this batch
                    histories[key] = pending
                    continue
                raw = store.get(key)
                if raw:
                    histories[key] = decode_history(raw, self.n_features, self.state_tag)
        committed = self.committed_offsets() if self.committed_offsets is not None else None
        loop = asyncio.get_running_loop()
        self.chunk_sequence += 1
        future = loop.run_in_executor(
            self.executor,
            self.compute_queued,
            parsed,
            histories,
            committed,
            self.chunk_sequence,
            self.state_generation,
        )
        return Running(future, parsed, self.chunk_sequence)

    def compute_queued(
        self,
        parsed: Parsed,
        histories: dict[bytes, HostHistory],
        committed: Mapping[int, int] | None,
        sequence: int,
        generation: int,
    ) -> tuple[np.ndarray, np.ndarray, dict[bytes, HostHistory], int, float]:
        """:meth:`compute` (scoring thread) with the states of chunks scored before this one
        but not yet collected, which ``histories`` (read when it was queued) lacks."""
        with self.unmerged_lock:
            current = generation == self.state_generation
            self.read_sequence = sequence
            if current and self.unmerged:
                for key in set(parsed.keys) - {HOSTLESS_KEY}:  # as start_scoring
                    newer = self.unmerged.get(key)
                    if newer is not None:
                        histories[key] = newer[1]
        result = self.compute(parsed, histories, committed)
        with self.unmerged_lock:
            if current and generation == self.state_generation:
                for key, history in result[2].items():
                    self.unmerged[key] = (sequence, history)
        return result

    async def finish_scoring(
        self, running: Running
    ) -> tuple[FlowColumns, list[bytes], np.ndarray, np.ndarray, float]:
        future, parsed, sequence = running
        scores, lengths, updated, redelivered, seconds = await future
        self.pending_state.update(updated)
        if self.host_ttl_s is not None and len(parsed.partitions):
            self.hosts.advance(parsed.partitions, parsed.times)
        self.partitions_seen.update(np.unique(parsed.partitions).tolist())
        with self.unmerged_lock:
            # States of collected chunks are in pending_state (then the table), where the
            # chunks handed over from now on find them; they can go once every chunk handed
            # over before has read its states (a queued one may not have yet)
            if self.read_sequence >= self.chunk_sequence and self.unmerged:
                self.unmerged = {
                    key: entry for key, entry in self.unmerged.items() if entry[0] > sequence
                }
        if redelivered:
            self.redelivered += redelivered
            log.info("%d redelivered flows scored again with their original windows", redelivered)
        return parsed.flows, parsed.keys, scores, lengths, seconds

    def batch_publisher(self) -> BatchPublisher | None:
        """The record-batch publisher over the app's aiokafka producer (None: per-message sends)."""
        if self._batches is False:
            return None
        if self._batches is None:
            try:
                producer = self.topics.verdicts.app.producer._producer
                if producer is None or not hasattr(producer, "create_batch"):
                    return None  # not started yet (or another driver): ask again next batch
            except AttributeError:  # test doubles: plain per-message sends
                self._batches = False
                return None
            self._batches = BatchPublisher(producer)
        return self._batches if isinstance(self._batches, BatchPublisher) else None

    async def publish(
        self,
        flows: FlowColumns,
        keys: list[bytes],
        scores: np.ndarray,
        lengths: np.ndarray,
        seconds: float,
    ) -> None:
        scored_at = time.time()
        threshold, version = self.threshold, self.model_version
        verdicts_send, alerts_send = self.topics.verdicts.send, self.topics.alerts.send
        batches = self.batch_publisher()
        verdict_out: list[tuple[bytes, bytes]] = []
        alert_out: list[tuple[bytes, bytes]] = []
        # the per-flow loop only builds the records; counts and latencies are numpy below
        predicted = np.asarray(scores) >= threshold
        for index, (key, score, length, is_attack) in enumerate(
            zip(keys, scores.tolist(), lengths.tolist(), predicted.tolist(), strict=True)
        ):
            verdict = {
                "flow_id": flows.flow_id[index],
                "src_ip": flows.src_ip[index],
                "dst_ip": flows.dst_ip[index],
                "dst_port": flows.dst_port[index],
                "protocol": flows.protocol[index],
                "timestamp": flows.timestamp[index],
                "produced_at": flows.produced_at[index],
                "scored_at": scored_at,
                "score": score,
                "is_attack": is_attack,
                "threshold": threshold,
                "model_version": version,
                "label": flows.label[index],
                "window_length": length,
            }
            value = orjson.dumps(verdict)
            if batches is None:
                await verdicts_send(key=key, value=value)
                if is_attack:
                    await alerts_send(key=key, value=value)
            else:
                verdict_out.append((key, value))
                if is_attack:
                    alert_out.append((key, value))
        if batches is not None:
            await batches.publish(
                [
                    (self.topics.verdicts.get_topic_name(), verdict_out),
                    (self.topics.alerts.get_topic_name(), alert_out),
                ]
            )
        labelled, attack = label_truth(flows.label)
        counts = Counts.of_arrays(predicted, attack, labelled)
        self.stats.add(counts, scored_at)
        if self.metrics is not None:
            # a flow without produced_at: NaN, left out by observe_batch
            produced = np.array(flows.produced_at, dtype=np.float64)
            self.metrics.observe_batch(
                size=len(flows),
                scoring_seconds=seconds,
                latencies=scored_at - produced,
                alerts=counts.alerts,
            )


def label_truth(labels: list[str | None]) -> tuple[np.ndarray, np.ndarray]:
    """(carries a label, is an attack) per flow; each distinct label is judged once.

    A placeholder label (``NeedManualLabel``) counts as no label (:func:`schema.label_class`).
    """
    judged = {label: label_class(label) for label in set(labels)}
    labelled = np.array([judged[label] != UNLABELLED for label in labels], dtype=np.bool_)
    attack = np.array([judged[label] == ATTACK for label in labels], dtype=np.bool_)
    return labelled, attack


class BatchPublisher:
    """Publishes many small records as aiokafka record batches, one per partition.

    Faust's ``Topic.send`` costs ~30 µs of event-loop time per record (a ``FutureMessage``, a
    future, the accumulator, a pure-Python murmur2 per key): at thousands of verdicts a second it
    was the worker's largest cost (py-spy, docs/performance.md). Here each partition's records of
    a batch are appended to one ``BatchBuilder`` and handed to the producer with ``send_batch``;
    the key -> partition mapping is the producer's own partitioner (murmur2, like per-record
    sends), computed once per distinct key. Delivery: before a batch is published, the previous
    batch's record batches must have been acknowledged by the broker (an error raises, so the
    agent crashes instead of silently dropping verdicts), which is at least as strong as the
    per-record sends, whose futures nobody awaited.
    """

    def __init__(self, producer: Any) -> None:
        self.producer = producer
        self.pending: list[Any] = []

    def partition(self, topic: str, key: bytes) -> int:
        return int(self.producer._partition(topic, None, None, None, key, None))

    async def publish(self, outputs: list[tuple[str, list[tuple[bytes, bytes]]]]) -> None:
        """Send ``(topic, [(key, value), ...])`` pairs, after the previous call's acks."""
        if self.pending:
            pending, self.pending = self.pending, []
            for future in pending:
                await future
        for topic, records in outputs:
            if records:
                await self.send(topic, records)

    async def send(
        self,
        topic: str,
        records: list[tuple[bytes, bytes]] | list[tuple[bytes, bytes | None]],
        partitions: list[int] | None = None,
    ) -> None:
        """Append ``records`` to one record batch per partition and hand those over; each
        record goes to its ``partitions`` entry when given and >= 0, else to the producer's
        partitioner's choice for its key."""
        await self.producer.client._wait_on_metadata(topic)
        by_key: dict[bytes, int] = {}
        builders: dict[int, Any] = {}
        for index, (key, value) in enumerate(records):
            partition = partitions[index] if partitions is not None else -1
            if partition < 0:
                partition = by_key.get(key, -1)
                if partition < 0:
                    partition = by_key[key] = self.partition(topic, key)
            builder = builders.get(partition)
            if builder is None:
                builder = builders[partition] = self.producer.create_batch()
            if builder.append(timestamp=None, key=key, value=value) is None:
                # full: send it and start another for this partition
                self.pending.append(
                    await self.producer.send_batch(builder, topic, partition=partition)
                )
                builder = builders[partition] = self.producer.create_batch()
                builder.append(timestamp=None, key=key, value=value)
        for partition, builder in builders.items():
            self.pending.append(await self.producer.send_batch(builder, topic, partition=partition))


class StateWriter:
    """Host states (and deletions) into the host-window table and its changelog, in batches.

    Faust's ``table[key] = value`` sends one changelog record through ``Topic.send_soon`` (a
    ``FutureMessage``, the producer's buffer, a pure-Python murmur2, a callback), and a missed
    ``table.get`` raises and catches a ``KeyError`` (8.5 us): fine for a few busy hosts per
    batch, the largest cost of a spoofed-source flood, where every flow is a new host that
    costs a state record and later a tombstone. With Faust's in-memory store the values go
    straight into the store's dict and the changelog records are appended to one aiokafka
    record batch per partition (:class:`BatchPublisher`), each to its host's ``flows``
    partition: changelog partition *p* is what the owner of ``flows`` partition *p* restores
    (:mod:`stream_ids.tables`; unknown partition: the producer's partitioner, as Faust's
    ``use_partitioner``). Delivery is Faust's: its commit flushes the producer (aiokafka's
    flush covers these batches) before it commits offsets; a failed batch raises at the next
    write, so the agent crashes instead of losing state. Faust's own path stays where this
    cannot apply: another store, transactions (exactly-once: the changelog records belong in
    the transaction), test doubles (a plain dict).
    """

    def __init__(self, table: Any) -> None:
        self.table = table
        self.store: Any = table_store(table)
        self._publisher: BatchPublisher | bool | None = None if self.store is not table else False
        self.topic = ""

    def publisher(self) -> BatchPublisher | None:
        if self._publisher is None:
            try:
                app = self.table.app
                if app.in_transaction:
                    self._publisher = False
                    return None
                producer = app.producer._producer
            except AttributeError:
                self._publisher = False
                return None
            if producer is None or not hasattr(producer, "create_batch"):
                return None  # not started yet: Faust's path, ask again next time
            self.topic = self.table.changelog_topic.get_topic_name()
            self._publisher = BatchPublisher(producer)
        return self._publisher if isinstance(self._publisher, BatchPublisher) else None

    async def write(self, records: list[tuple[bytes, bytes | None, int]]) -> None:
        """Set (value) or delete (None) each key, with its changelog record, in order."""
        if not records:
            return
        publisher = self.publisher()
        table = self.table
        if publisher is None:
            for key, value, _partition in records:
                if value is not None:
                    table[key] = value
                elif key in table:
                    del table[key]  # a changelog tombstone: a restore skips the host
            return
        # the previous write's batches acknowledged first (or raise: the agent crashes before
        # this batch's states exist anywhere, so none is in the store without its record)
        await publisher.publish([])
        store = self.store
        out: list[tuple[bytes, bytes | None]] = []
        partitions: list[int] = []
        for key, value, partition in records:
            if value is not None:
                store[key] = value
            elif store.pop(key, None) is None:
                continue  # not in the table: no tombstone needed
            out.append((key, value))
            partitions.append(partition)
        await publisher.send(self.topic, out, partitions)
