"""Bounded per-host state: which hosts to drop, decided without Faust.

Two guards keep the host-window table (and its changelog) from growing with every source
address a worker ever saw (a spoofed-source flood: one new host per flow):

* **TTL by flow time.** A host whose newest flow is more than the host TTL
  (``STREAM_IDS_HOST_TTL_S``) older than the newest flow time of its ``flows`` partition is
  expired: its state is deleted, which writes a tombstone to the changelog, so a restore skips
  it. Flow time (the flows' own timestamps), not the wall clock: a replay behaves as live
  traffic. A window never reaches back over such a gap anyway
  (:func:`stream_ids.tables.build_batch_windows`, :func:`stream_ids.sequences.make_windows`), so
  expiry changes no score, as long as a partition's flows arrive no more than the TTL out of
  flow-time order. Only hosts whose flows are all committed are expired: a flow Kafka may
  still redeliver after a crash finds the state it was scored with the first time.
* **A host budget** (``STREAM_IDS_MAX_HOSTS``): beyond it the least recently seen hosts are
  evicted first (counted, never an error, never a lost flow: an evicted host's next flow starts
  a fresh window, as a new host).

:class:`HostIndex` keeps, per host in state, its partition, newest flow time and newest source
position, in least-recently-seen-first order (a dict re-inserted on every write), and each
partition's flow clock. The worker (:class:`stream_ids.agents.scoring.BatchScorer`) updates it
once per host per batch and asks it at batch boundaries; a TTL sweep runs only when a
partition's clock advanced by a quarter of the TTL since its last sweep, so its cost (one pass
over the hosts in state) is amortised over many batches.
"""

from __future__ import annotations

import math
from collections.abc import Iterable, Mapping

import numpy as np

# A TTL sweep runs when a partition's flow clock advanced this fraction of the TTL since the
# last one: a host is then dropped at most TTL * (1 + SWEEP_FRACTION) after its newest flow.
SWEEP_FRACTION = 0.25


class HostIndex:
    """Hosts in state (least recently seen first) and each partition's flow clock."""

    def __init__(self) -> None:
        # host -> (partition, newest flow time (NaN: unknown), newest source position)
        self.hosts: dict[bytes, tuple[int, float, int]] = {}
        self.clocks: dict[int, float] = {}  # partition -> newest flow time seen
        self.swept: dict[int, float] = {}  # partition -> its clock at its last sweep

    def __len__(self) -> int:
        return len(self.hosts)

    def clear(self) -> None:
        self.hosts.clear()
        self.clocks.clear()
        self.swept.clear()

    def touch(self, host: bytes, partition: int, newest: float, position: int) -> None:
        """``host`` was written now: the most recently seen one."""
        self.hosts.pop(host, None)
        self.hosts[host] = (int(partition), float(newest), int(position))

    def forget(self, hosts: Iterable[bytes]) -> None:
        for host in hosts:
            self.hosts.pop(host, None)

    def pop_partitions(self, hosts: Iterable[bytes]) -> list[tuple[bytes, None, int]]:
        """Forget ``hosts``; returns (host, None, partition) of those indexed: their
        deletions (a changelog tombstone each, to the host's partition)."""
        pop = self.hosts.pop
        out = []
        for host in hosts:
            entry = pop(host, None)
            if entry is not None:
                out.append((host, None, entry[0]))
        return out

    def advance(self, partitions: np.ndarray, times: np.ndarray) -> None:
        """Move each partition's clock to the newest of ``times`` (flows of a chunk)."""
        partitions = np.asarray(partitions, dtype=np.int64)
        times = np.asarray(times, dtype=np.float64)
        known = np.isfinite(times) & (partitions >= 0)
        if not known.any():
            return
        partitions, times = partitions[known], times[known]
        for partition in np.unique(partitions).tolist():
            newest = float(times[partitions == partition].max())
            if newest > self.clocks.get(partition, -math.inf):
                self.clocks[partition] = newest
            self.swept.setdefault(partition, self.clocks[partition])

    def sweep_due(self, ttl: float) -> bool:
        """Whether some partition's clock advanced SWEEP_FRACTION * ttl since its last sweep."""
        step = ttl * SWEEP_FRACTION
        return any(clock - self.swept.get(p, clock) >= step for p, clock in self.clocks.items())

    def expired(self, ttl: float, committed: Mapping[int, int]) -> list[bytes]:
        """Hosts idle longer than ``ttl`` by their partition's flow clock, whose flows are all
        committed (``committed``: partition -> first source position not committed; a
        partition missing there expires nothing). Marks the sweep done."""
        cutoffs = {
            partition: (clock - ttl, committed[partition])
            for partition, clock in self.clocks.items()
            if partition in committed
        }
        for partition in cutoffs:
            self.swept[partition] = self.clocks[partition]
        if not cutoffs:
            return []
        out = []
        for host, (partition, newest, position) in self.hosts.items():
            cutoff = cutoffs.get(partition)
            # NaN (a state from before flow times were kept) never compares older: the budget
            # still bounds such hosts
            if cutoff is not None and newest < cutoff[0] and position < cutoff[1]:
                out.append(host)
        return out

    def over_budget(self, max_hosts: int, partitions: Iterable[int] | None = None) -> list[bytes]:
        """The least recently seen hosts beyond ``max_hosts`` (of ``partitions`` only, when
        given: hosts of partitions this worker does not score are not its to drop)."""
        excess = len(self.hosts) - max_hosts
        if excess <= 0:
            return []
        allowed = None if partitions is None else set(partitions)
        out = []
        for host, (partition, _newest, _position) in self.hosts.items():
            if allowed is None or partition in allowed:
                out.append(host)
                if len(out) == excess:
                    break
        return out
