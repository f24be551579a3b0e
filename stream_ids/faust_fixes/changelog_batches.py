"""Host states written straight into the table's store and its changelog, in record batches.

Works around the cost of Faust's per-key table writes: ``table[key] = value`` sends one
changelog record through ``Topic.send_soon`` (a ``FutureMessage``, the producer's buffer, a
pure-Python murmur2, a callback), and a missed ``table.get`` raises and catches a ``KeyError``
(8.5 us): fine for a few busy hosts per batch, the largest cost of a spoofed-source flood, where
every flow is a new host that costs a state record and later a tombstone. Upstream: the same
per-record send path as :mod:`stream_ids.faust_fixes.record_batches` (robinhood/faust#718;
faust-streaming/faust#108, no batch send); Faust's tables have no batch write. Delete this module
(and write ``table[key] = value``) once they do.

With Faust's in-memory store the values go straight into the store's dict and the changelog
records are appended to one aiokafka record batch per partition, each to its host's ``flows``
partition: changelog partition *p* is what the owner of ``flows`` partition *p* restores
(:mod:`stream_ids.tables`; unknown partition: the producer's partitioner, as Faust's
``use_partitioner``). Delivery is Faust's: its commit flushes the producer (aiokafka's flush
covers these batches) before it commits offsets; a failed batch raises at the next write, so
the agent crashes instead of losing state. Faust's own path stays where this cannot apply:
another store, transactions (exactly-once: the changelog records belong in the transaction),
test doubles (a plain dict).

Private attributes read (checked at start-up): the in-memory store's dict
(``table.data.data``), and those of :mod:`stream_ids.faust_fixes.record_batches`.
"""

from __future__ import annotations

from collections.abc import MutableMapping
from typing import Any

from stream_ids.faust_fixes.record_batches import RecordBatchSender, record_batch_sender


def table_store(table: Any) -> MutableMapping[bytes, bytes]:
    """The dict behind a Faust table with the in-memory store (``table.data.data``): reads
    and writes there skip Faust's per-key Python. Anything else (another store, a plain dict
    in tests): the table itself."""
    inner = getattr(getattr(table, "data", None), "data", None)
    return inner if isinstance(inner, dict) else table


class StateWriter:
    """Host states (and deletions) into the host-window table and its changelog, in batches."""

    def __init__(self, table: Any) -> None:
        self.table = table
        self.store = table_store(table)
        # None: ask for the producer at the next write; False: Faust's path (table[key] = ...)
        self._sender: RecordBatchSender | bool | None = None if self.store is not table else False
        self.topic = ""

    def sender(self) -> RecordBatchSender | None:
        if self._sender is None:
            sender = record_batch_sender(self.table, transactions_too=False)
            if sender is False:
                self._sender = False
                return None
            if sender is None:
                return None  # not started yet: Faust's path, ask again next time
            self.topic = self.table.changelog_topic.get_topic_name()
            self._sender = sender
        return self._sender if isinstance(self._sender, RecordBatchSender) else None

    async def write(self, records: list[tuple[bytes, bytes | None, int]]) -> None:
        """Set (value) or delete (None) each key, with its changelog record, in order."""
        if not records:
            return
        sender = self.sender()
        table = self.table
        if sender is None:
            for key, value, _partition in records:
                if value is not None:
                    table[key] = value
                elif key in table:
                    del table[key]  # a changelog tombstone: a restore skips the host
            return
        # the previous write's batches acknowledged first (or raise: the agent crashes before
        # this batch's states exist anywhere, so none is in the store without its record)
        await sender.settle()
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
        await sender.send(self.topic, out, partitions)
