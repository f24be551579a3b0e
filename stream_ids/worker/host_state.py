"""Step 5 of a batch: the hosts' window states, read for scoring and written once per batch.

Each host's new history goes back to the table once per batch (one changelog record per host,
:class:`stream_ids.faust_fixes.changelog_batches.StateWriter`), with the tombstones of hosts
dropped by the state bounds (:mod:`stream_ids.host_expiry`: idle hosts past the TTL, the least
recently seen past the host budget). After a (re)assignment the restored hosts are indexed at
the first batch boundary, which also records what the restore cost.
"""

from __future__ import annotations

import logging
import time
from collections.abc import Callable, Mapping
from typing import Any

import numpy as np

from stream_ids.faust_fixes.changelog_batches import StateWriter
from stream_ids.host_expiry import HostIndex
from stream_ids.rolling import RollingStats
from stream_ids.tables import (
    HOSTLESS_KEY,
    HostHistory,
    RestoreCounter,
    decode_history,
    encode_history,
    source_position,
    state_summary,
)
from stream_ids.worker.validate import ValidFlows

log = logging.getLogger(__name__)


class HostState:
    """The host-window table as the worker uses it: pending states, bounds, restores."""

    def __init__(
        self,
        table: Any,
        stats: RollingStats,
        state_width: int,
        state_tag: bytes,
        metrics: Any = None,
        committed_offsets: Callable[[], Mapping[int, int]] | None = None,
        host_ttl_s: float | None = None,
        max_hosts: int | None = None,
        restore_counter: RestoreCounter | None = None,
        assigned_partitions: Callable[[], set[int] | None] | None = None,
    ) -> None:
        self.writer = StateWriter(table)
        self.stats = stats
        self.metrics = metrics
        self.state_width = state_width
        self.state_tag = state_tag
        # partition -> committed offset of ``flows`` (bounds the per-host state; see tables)
        self.committed_offsets = committed_offsets
        # host states of the batch in progress, written to the table once at its end
        self.pending: dict[bytes, HostHistory] = {}
        # bounded host state: TTL of flow time (None: none, windows span any gap), host
        # budget (None: unbounded)
        self.host_ttl_s = host_ttl_s
        self.max_hosts = max_hosts
        self.hosts = HostIndex()
        self.partitions_seen: set[int] = set()  # since the last assignment: ours to expire
        self.hosts_expired = 0
        self.hosts_evicted = 0
        self.assigned_at: float | None = time.monotonic()  # until the first batch is written
        self.restore: tuple[float, int] | None = None  # (seconds, hosts) at the last one
        # changelog records read by the last restore, and when it ended
        self.restore_counter = restore_counter
        # the flows partitions this worker scores now (None: unknown, every host counts)
        self.assigned_partitions = assigned_partitions
        self.scored: set[int] | None = None  # as of the last index rebuild

    def committed(self) -> Mapping[int, int] | None:
        return self.committed_offsets() if self.committed_offsets is not None else None

    def histories(self, keys: list[bytes]) -> dict[bytes, HostHistory]:
        """The newest state of each host of ``keys``: this batch's pending one, or the table's."""
        histories = {}
        store = self.writer.store
        for key in set(keys):
            if key != HOSTLESS_KEY:
                pending = self.pending.get(key)
                if pending is not None:  # written by an earlier chunk of this batch
                    histories[key] = pending
                    continue
                raw = store.get(key)
                if raw:
                    histories[key] = decode_history(raw, self.state_width, self.state_tag)
        return histories

    def collect(self, valid: ValidFlows, updated: dict[bytes, HostHistory]) -> None:
        """A scored chunk's new host states, pending until :meth:`write`."""
        self.pending.update(updated)
        if self.host_ttl_s is not None and len(valid.partitions):
            self.hosts.advance(valid.partitions, valid.times)
        self.partitions_seen.update(np.unique(valid.partitions).tolist())

    async def write(self) -> None:
        """One table (changelog) write per host per batch, not per chunk.

        A busy host's state holds up to MAX_KEPT encodings; rewritten for each ~2,048-flow
        chunk it made lz4 compression of the changelog 22% of the event loop (py-spy).
        Written before the batch's events are released for acking; the states and the
        tombstones of dropped hosts go out as whole record batches.
        """
        if self.assigned_at is not None:
            self.index_restored_hosts()
        touch = self.hosts.touch
        tag = self.state_tag
        records: list[tuple[bytes, bytes | None, int]] = []
        counts = self.counts
        for key, history in self.pending.items():
            records.append((key, encode_history(history, tag), history.partition))
            if counts(history.partition):  # not a batch taken before the assignment lost it
                touch(key, history.partition, history.newest_time(), int(history.positions[-1]))
        self.pending.clear()
        records.extend(self.bound())
        await self.writer.write(records)

    def index_restored_hosts(self) -> None:
        """After a (re)assignment: index the hosts the table holds (restored from the
        changelog), once, at the first batch boundary; records how long the restore took.

        Only hosts of the ``flows`` partitions this worker scores are indexed: counted,
        expired, evicted. The store also holds standby replicas of other workers' partitions
        and the states this worker wrote for partitions it has lost since (Faust's memory store
        forgets a lost partition's keys only if they came from the changelog); those counted
        against its host budget before. They are not dropped: a partition revoked in a
        rebalance that Faust abandons keeps its changelog offset, and would come back only
        partly restored.
        """
        started, self.assigned_at = self.assigned_at, None
        self.hosts.clear()
        self.scored = self.assigned_partitions() if self.assigned_partitions is not None else None
        for key, raw in list(self.writer.store.items()):
            summary = state_summary(raw, self.state_tag)
            if summary is not None and self.counts(summary[0]):
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

    def counts(self, partition: int) -> bool:
        """Whether a host of ``partition`` is this worker's to count, expire and evict."""
        return self.scored is None or partition < 0 or partition in self.scored

    def reassigned(self) -> None:
        """Partitions were (re)assigned: the index is rebuilt at the next batch boundary."""
        self.assigned_at = time.monotonic()
        self.partitions_seen.clear()
        if self.restore_counter is not None:
            self.restore_counter.reset()

    def bound(self) -> list[tuple[bytes, bytes | None, int]]:
        """At a batch boundary: expire idle hosts (a sweep when due) and keep the budget.

        Only hosts of partitions this worker scored since its last assignment are dropped;
        returns their deletions (key, None, partition) for :meth:`StateWriter.write`, which
        removes the keys and writes changelog tombstones.
        """
        expired: list[bytes] = []
        evicted: list[bytes] = []
        drops: list[tuple[bytes, bytes | None, int]] = []
        if self.host_ttl_s is not None and self.hosts.sweep_due(self.host_ttl_s):
            offsets = self.committed() or {}
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
