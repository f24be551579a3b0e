"""Per-host window state: each source host's recent flows, with where they came from.

The state lives in a changelog-backed Faust table keyed by the host (the raw UTF-8 key bytes of
``flows``). The table uses the producer's partitioner for its changelog (``use_partitioner``):
the ``flows`` producers partition by murmur2 of the same key bytes (Java/aiokafka compatible),
so a host's state is written to the changelog partition with the number of the ``flows``
partition that carries the host. On restart or rebalance the worker that gets ``flows``
partition *p* restores changelog partition *p* and continues every host's sequence there.

A value is a :class:`HostHistory`: the host's last flows as rows (with the split scorer, the
shipped CNN-LSTM, a row is the flow's CNN encoding, so a window costs one encoder pass for the
new flow only), each with its **source position** in ``flows`` (``offset << 20 | index`` of the
flow inside its message) and the partition. Positions make redelivery exact: the changelog is
written while a batch is processed and the batch's offsets are committed up to
``broker_commit_interval`` later, so after a crash or a rebalance the restored state can already
hold flows that Kafka delivers again. Kafka redelivers a partition contiguously from the
committed offset, so when a host's first flow in a batch has a position at or before the last
one in its state, every later entry is being redelivered too: the state is cut back to the
flows before it and the redelivered flows are scored and applied again, exactly as in an
uninterrupted run. For that the state keeps, besides the ``T - 1`` rows a window needs, every
row at or after the partition's committed offset (at most :data:`MAX_KEPT` rows; when the
committed offset is unknown, :data:`RESERVE` extra rows).

Each row also keeps its flow's **flow time** (the flow's own ``timestamp``): a window never
reaches back over a gap of more than the host TTL (``STREAM_IDS_HOST_TTL_S``) between two
consecutive flows of its host: a host that comes back after that long starts a fresh window,
as a new host does (:func:`stream_ids.sequences.make_windows` applies the same rule offline).
The times make that rule a function of the host's flows alone, so expiring an idle host's
state (:mod:`stream_ids.host_expiry`) changes no score, and redelivered flows see the gaps
they saw the first time.

Encoding (raw bytes, exact float32, no JSON round-off): ``tag`` (names the model that made the
rows: state of another model, or an older encoding, is not reused and the host starts afresh),
``b"h3"``, little-endian int32 partition and uint32 count, int64 positions, float64 flow times,
float32 rows ``(count, W)`` C-ordered, oldest first. ``b"h2"`` states (no times; written
before the TTL) are still read, their times unknown (NaN: no gap is ever found in them).

:func:`build_batch_windows` is the pure logic (no Faust): within one batch several flows of one
host see each other in arrival order, after the history from the table.
"""

from __future__ import annotations

import struct
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any, NamedTuple

import numpy as np

from stream_ids.wire import HOSTLESS

# Flows without a source host are keyed by this synthetic host (stream_ids.wire.HOSTLESS);
# each is its own host (padding plus itself).
HOSTLESS_KEY = HOSTLESS.encode()

# A source position: the message offset shifted left, plus the flow's index in its message
# (host micro-batches carry many flows per message).
POSITION_SHIFT = 20
# Rows kept beyond T - 1 when the partition's committed offset is unknown.
RESERVE = 64
# At most this many rows per host (~270 kB with 64-wide encodings: well under Kafka's 1 MB
# message limit). A host with more flows than this between two commits is rebuilt from what is
# kept if those flows are redelivered (its next windows can then be shorter than T).
MAX_KEPT = 1024
_FORMAT = b"h3"
_FORMAT_V2 = b"h2"  # without flow times
_HEADER = struct.Struct("<iI")


def source_position(offset: int, index: int = 0) -> int:
    return (int(offset) << POSITION_SHIFT) | int(index)


def source_positions(offset: int, indices: Sequence[int]) -> np.ndarray:
    """:func:`source_position` of several flows of one message, as int64."""
    return (np.int64(offset) << POSITION_SHIFT) | np.asarray(indices, dtype=np.int64)


@dataclass(frozen=True)
class HostHistory:
    """A host's recent flows: rows ``(k, W)`` float32 oldest first, their source positions,
    the ``flows`` partition, their flow times (float64 epoch seconds; None: unknown)."""

    rows: np.ndarray
    positions: np.ndarray
    partition: int = -1
    times: np.ndarray | None = None

    @classmethod
    def empty(cls, width: int) -> HostHistory:
        return cls(np.zeros((0, width), dtype=np.float32), np.zeros(0, dtype=np.int64))

    def flow_times(self) -> np.ndarray:
        """The rows' flow times, NaN where unknown."""
        if self.times is None:
            return np.full(len(self.rows), np.nan)
        return np.asarray(self.times, dtype=np.float64)

    def newest_time(self) -> float:
        """The newest row's flow time (NaN: none or unknown)."""
        return float(self.times[-1]) if self.times is not None and len(self.times) else np.nan

    @classmethod
    def of(cls, rows: np.ndarray) -> HostHistory:
        """Rows without a known source (positions -1): never treated as redelivered."""
        rows = np.asarray(rows, dtype=np.float32)
        return cls(rows, np.full(len(rows), -1, dtype=np.int64))

    def __len__(self) -> int:
        return len(self.rows)


def encode_history(history: HostHistory, tag: bytes = b"") -> bytes:
    rows = np.ascontiguousarray(history.rows, dtype=np.float32)
    positions = np.ascontiguousarray(history.positions, dtype="<i8")
    times = np.ascontiguousarray(history.flow_times(), dtype="<f8")
    header = _HEADER.pack(int(history.partition), len(rows))
    return b"".join((tag, _FORMAT, header, positions.tobytes(), times.tobytes(), rows.tobytes()))


def decode_history(raw: bytes | None, width: int, tag: bytes = b"") -> HostHistory:
    """The stored history, or an empty one for missing, foreign or malformed state."""
    prefix, timed = tag + _FORMAT, True
    if raw and not raw.startswith(prefix) and raw.startswith(tag + _FORMAT_V2):
        prefix, timed = tag + _FORMAT_V2, False
    if not raw or not raw.startswith(prefix) or len(raw) < len(prefix) + _HEADER.size:
        return HostHistory.empty(width)
    partition, count = _HEADER.unpack_from(raw, len(prefix))
    start = len(prefix) + _HEADER.size
    per_row = (16 if timed else 8) + 4 * width
    if len(raw) - start != count * per_row:
        # another model's width (or a damaged value): start the host afresh
        return HostHistory.empty(width)
    positions = np.frombuffer(raw, dtype="<i8", count=count, offset=start).astype(np.int64)
    start += 8 * count
    times = None
    if timed:
        times = np.frombuffer(raw, dtype="<f8", count=count, offset=start).astype(np.float64)
        start += 8 * count
    rows = np.frombuffer(raw, dtype=np.float32, offset=start).reshape(count, width)
    return HostHistory(rows, positions, partition, times)


def state_summary(raw: bytes | None, tag: bytes = b"") -> tuple[int, float, int] | None:
    """(partition, newest flow time, newest source position) of a stored state, reading its
    header and last entries only (no rows): what expiry needs to index a restored host. None
    for a missing, foreign or empty state; the time is NaN in an ``h2`` state."""
    if not raw:
        return None
    timed = raw.startswith(tag + _FORMAT)
    if not timed and not raw.startswith(tag + _FORMAT_V2):
        return None
    start = len(tag) + len(_FORMAT)
    if len(raw) < start + _HEADER.size:
        return None
    partition, count = _HEADER.unpack_from(raw, start)
    start += _HEADER.size
    if count == 0 or len(raw) < start + count * (16 if timed else 8):
        return None
    (position,) = struct.unpack_from("<q", raw, start + 8 * (count - 1))
    newest = np.nan
    if timed:
        (newest,) = struct.unpack_from("<d", raw, start + 8 * count + 8 * (count - 1))
    return int(partition), float(newest), int(position)


class BatchWindows(NamedTuple):
    windows: np.ndarray  # (n, T, W), zero-padded at the front
    lengths: np.ndarray  # (n,) real flows per window
    updated: dict[bytes, HostHistory]  # every host's new state
    redelivered: int  # flows found already in a host's state (applied again, not twice)


def build_batch_windows(
    transformed: np.ndarray,
    hosts: Sequence[bytes],
    histories: Mapping[bytes, HostHistory],
    window: int,
    positions: Sequence[int] | np.ndarray | None = None,
    partitions: Sequence[int] | np.ndarray | None = None,
    committed: Mapping[int, int] | None = None,
    times: Sequence[float] | np.ndarray | None = None,
    ttl: float | None = None,
) -> BatchWindows:
    """Windows for a batch of flows in arrival order.

    ``transformed`` is (n, W); ``hosts[i]`` the key of flow *i*; ``histories`` each host's
    stored state; ``positions``/``partitions`` where each flow came from (None: unknown, no
    redelivery handling); ``committed`` each partition's committed offset (the next offset
    Kafka would deliver after a restart), which bounds the rows kept; ``times`` each flow's
    flow time (None: unknown) and ``ttl`` the host TTL: a window starts after the last gap of
    more than ``ttl`` seconds between consecutive flows of its host (None: no TTL). The
    hostless key never keeps history.
    """
    transformed = np.asarray(transformed, dtype=np.float32)
    n, features = transformed.shape
    updated: dict[bytes, HostHistory] = {}
    redelivered = 0
    need = window - 1
    where = np.full(n, -1, dtype=np.int64) if positions is None else np.asarray(positions)
    parts = np.full(n, -1, dtype=np.int64) if partitions is None else np.asarray(partitions)
    stamps = np.full(n, np.nan) if times is None else np.asarray(times, dtype=np.float64)
    time_pieces: list[np.ndarray] = []  # the flow times along the sequence (gaps: TTL)
    groups: dict[bytes, list[int]] = {}
    for index, host in enumerate(hosts):
        groups.setdefault(host, []).append(index)
    # Every host's context rows (its last T-1 stored rows) followed by its batch rows go into
    # one sequence; each flow's window is then the T entries of the sequence ending at its own
    # row, cut at the start of its host's segment: one gather for the whole batch (the scoring
    # thread shares the GIL with the event loop, so per-flow Python here cost ~3 us a flow
    # alone and ~10x that under contention; docs/performance.md section 8).
    pieces: list[np.ndarray] = []
    at = np.empty(n, dtype=np.int64)  # each flow's row in the sequence
    begins = np.empty(n, dtype=np.int64)  # where its host's segment starts
    size = 0
    fresh: list[int] = []  # flows of hosts without state and no other flow in the batch
    for host, indices in groups.items():
        if len(indices) == 1 and need > 0 and host != HOSTLESS_KEY and not histories.get(host):
            fresh.append(indices[0])
            continue
        rows = transformed[indices]
        if host == HOSTLESS_KEY or need == 0:
            # each flow alone: padding plus itself
            pieces.append(rows)
            time_pieces.append(np.full(len(indices), np.nan))
            at[indices] = begins[indices] = np.arange(size, size + len(indices))
            size += len(indices)
            continue
        history = histories.get(host) or HostHistory.empty(features)
        partition, first = int(parts[indices[0]]), int(where[indices[0]])
        if (
            first >= 0
            and len(history)
            and history.partition == partition
            and history.positions[-1] >= first
        ):
            # Redelivery: this flow and everything after it in the state is coming again.
            cut = int(np.searchsorted(history.positions, first, side="left"))
            redelivered += len(history) - cut
            history = HostHistory(
                history.rows[:cut], history.positions[:cut], partition, history.flow_times()[:cut]
            )
        context_from = max(0, len(history) - need)
        context = history.rows[context_from:]
        history_times = history.flow_times()
        pieces.append(context)
        pieces.append(rows)
        time_pieces.append(history_times[context_from:])
        time_pieces.append(stamps[indices])
        begins[indices] = size
        at[indices] = np.arange(size + len(context), size + len(context) + len(indices))
        size += len(context) + len(indices)
        all_rows = np.concatenate([history.rows, rows]) if len(history) else rows
        all_positions = np.concatenate([history.positions, where[indices].astype(np.int64)])
        all_times = np.concatenate([history_times, stamps[indices]])
        if committed is not None and partition in committed:
            boundary = source_position(committed[partition])
            uncommitted = len(all_positions) - int(np.searchsorted(all_positions, boundary))
            keep = need + uncommitted
        else:
            keep = need + RESERVE
        keep = min(keep, MAX_KEPT, len(all_rows))
        updated[host] = HostHistory(
            np.ascontiguousarray(all_rows[len(all_rows) - keep :]),
            np.ascontiguousarray(all_positions[len(all_positions) - keep :]),
            partition,
            np.ascontiguousarray(all_times[len(all_times) - keep :]),
        )
    if fresh:
        # A new host's only flow (a spoofed-source flood: nearly every flow): its window is
        # itself, its state that one flow; done in bulk, not ~20 us of numpy per host (the
        # scoring thread holds the GIL the event loop needs meanwhile)
        take = np.asarray(fresh, dtype=np.int64)
        fresh_rows = np.ascontiguousarray(transformed[take])
        fresh_positions = np.ascontiguousarray(where[take].astype(np.int64))
        fresh_times = np.ascontiguousarray(stamps[take])
        pieces.append(fresh_rows)
        time_pieces.append(fresh_times)
        at[take] = begins[take] = np.arange(size, size + len(take))
        size += len(take)
        for j, (index, partition) in enumerate(zip(fresh, parts[take].tolist(), strict=True)):
            updated[hosts[index]] = HostHistory(
                fresh_rows[j : j + 1],
                fresh_positions[j : j + 1],
                partition,
                fresh_times[j : j + 1],
            )
    if n == 0:
        return BatchWindows(
            np.zeros((0, window, features), np.float32), np.zeros(0, np.int32), updated, 0
        )
    sequence = np.concatenate(pieces) if len(pieces) > 1 else pieces[0]
    if ttl is not None:
        # a gap of more than ttl inside a host's segment starts its window afresh there
        begins = np.maximum(begins, session_starts(np.concatenate(time_pieces), ttl)[at])
    steps = at[:, None] + np.arange(1 - window, 1, dtype=np.int64)[None, :]  # (n, T)
    valid = steps >= begins[:, None]
    windows = sequence[np.where(valid, steps, 0)]
    windows[~valid] = 0.0
    lengths = valid.sum(axis=1).astype(np.int32)
    return BatchWindows(windows, lengths, updated, redelivered)


def session_starts(times: np.ndarray, ttl: float) -> np.ndarray:
    """For each entry of a time sequence, the index where its run without a gap of more than
    ``ttl`` seconds began (NaN times never make a gap). Entries of different hosts are kept
    apart by the caller (``begins``): the result is only ever used as a lower bound."""
    n = len(times)
    gap = np.zeros(n, dtype=bool)
    if n > 1:
        with np.errstate(invalid="ignore"):
            gap[1:] = np.diff(times) > ttl
    return np.maximum.accumulate(np.where(gap, np.arange(n), 0)) if n else np.zeros(0, np.int64)


# The changelog is compacted (Faust's default for a table: ``cleanup.policy=compact``); these
# make compaction keep up while the worker lives, so a restart reads the live hosts plus a
# short tail, not every state ever written. Kafka compacts closed segments only (the default
# segment.ms is 7 days): the open segment, at most ``segment.ms`` of writes (a flood: ~2
# records per new source), and what the cleaner has not reached yet are read whole; tombstones
# of dropped hosts go ``delete.retention.ms`` after the cleaner reached them. A short retention
# is safe here: a restore that misses a tombstone keeps an idle host's state, which its next
# flow's TTL gap ignores and the next sweep drops again (an evicted host may keep its window:
# the budget changes scores anyway). Measured in a 600,000-source flood (docs/reliability.md):
# 5 s segments ~2.1-2.3 records per live host restored, 10 s ~2.4; with 60 s segments and 60 s
# retention a 60,000-source run restored every record written. Applied when the topic is
# created; an existing changelog keeps its settings (docs/operations.md: kafka-configs --alter).
CHANGELOG_CONFIG = {
    "segment.ms": "5000",
    "segment.bytes": str(64 << 20),
    "min.cleanable.dirty.ratio": "0.1",
    "delete.retention.ms": "1000",
    "min.compaction.lag.ms": "0",
}


class RestoreCounter:
    """Counts the changelog records Faust's recovery applies to a table since :meth:`reset`
    (a partition assignment), and when the recovery ended: what a restore cost, which the
    restored host count alone does not tell (overwritten states and tombstones that compaction
    has not removed yet are read too). Only active partitions count: a standby replica reads
    its changelog partitions all the time."""

    def __init__(self, table: Any, clock: Any = None) -> None:
        import time

        self.clock = clock or time.monotonic
        self.records = 0
        self.recovered_at: float | None = None
        self._apply = table.apply_changelog_batch
        self._table = table
        # Faust's recovery calls table.apply_changelog_batch(buffer): counted on the way
        table.apply_changelog_batch = self._counting

    def _counting(self, batch: Any) -> None:
        recovery = getattr(getattr(self._table.app, "tables", None), "recovery", None)
        active = getattr(recovery, "active_tps", None)
        if active is None:
            self.records += len(batch)
        else:
            self.records += sum(1 for event in batch if event.message.tp in active)
        self._apply(batch)

    def reset(self) -> None:
        self.records = 0
        self.recovered_at = None

    def recovered(self, *_args: Any, **_kwargs: Any) -> None:
        """Faust's recovery completed (connected to ``app.on_rebalance_complete``)."""
        self.recovered_at = self.clock()


def host_window_table(app: Any, name: str = "host-windows", partitions: int | None = None) -> Any:
    """The changelog-backed table of per-host histories (raw key bytes -> raw float32 bytes)."""
    return app.Table(
        name,
        default=None,
        key_type=bytes,
        value_type=bytes,
        partitions=partitions,
        use_partitioner=True,
        extra_topic_configs=CHANGELOG_CONFIG,
        help="last T-1 flow encodings (or transformed flows) per source host",
    )


class AssignedPartitions:
    """The ``flows`` partitions this worker scores now, from Faust's assignor (public API): the
    host index counts, expires and evicts only their hosts."""

    def __init__(self, app: Any, flows_topic: str) -> None:
        self.app = app
        self.flows_topic = flows_topic

    def __call__(self) -> set[int] | None:
        """The scored partitions (empty: only standby replicas here); None before any
        assignment."""
        assignor = self.app.assignor
        actives = assignor.assigned_actives()
        if not actives and not assignor.assigned_standbys():
            return None
        return {tp.partition for tp in actives if tp.topic == self.flows_topic}
