"""Step 3 of a batch: the chunk pipeline (windows and the model, in the scoring thread).

A chunk's hosts' histories are read from the table on the event loop
(:meth:`stream_ids.worker.host_state.HostState.histories`); window building (histories plus
the chunk's earlier flows of the same host, one numpy gather,
:func:`stream_ids.tables.build_batch_windows`) and the model run in a single-thread executor,
so the event loop never blocks. With a split model (:meth:`stream_ids.scorer.Scorer.enable_split`)
the table holds each host's last flow *encodings*: the encoder runs once per new flow, the LSTM
head over the cached window. Each flow carries its source position, so flows Kafka redelivers
after a crash or rebalance (already in the restored state) are scored with the window they had
the first time.

Chunks are scored one after the other; a chunk queued behind another takes the newer host
states that one wrote from the thread's own record (:attr:`ScoringPipeline.unmerged`), as the
event loop may not have collected them yet.
"""

from __future__ import annotations

import asyncio
import threading
import time
from collections.abc import Mapping
from concurrent.futures import ThreadPoolExecutor
from typing import NamedTuple

import numpy as np

from stream_ids.tables import HOSTLESS_KEY, HostHistory, build_batch_windows
from stream_ids.wire import FlowColumns
from stream_ids.worker.protocols import ScoringModel
from stream_ids.worker.validate import ValidFlows


class Chunk(NamedTuple):
    """Validated flows and their model inputs, ready for the scoring thread."""

    valid: ValidFlows
    inputs: np.ndarray  # (n, model inputs) float32: the feature transform, already applied


class Computed(NamedTuple):
    """What the scoring thread made of a chunk."""

    scores: np.ndarray  # (n,) float32
    lengths: np.ndarray  # (n,) each window's real length
    updated: dict[bytes, HostHistory]  # the chunk's hosts' new states
    redelivered: int  # flows scored again with their original windows
    seconds: float  # time in the thread


class Running(NamedTuple):
    """A chunk handed to the scoring thread."""

    future: asyncio.Future[Computed]
    chunk: Chunk
    sequence: int  # the chunk's number, names its host states in ``ScoringPipeline.unmerged``


class Scored(NamedTuple):
    """A chunk's flows with their scores, ready to publish."""

    flows: FlowColumns
    keys: list[bytes]
    scores: np.ndarray
    lengths: np.ndarray
    seconds: float


class ScoringPipeline:
    """Scores chunks with ``model`` in ``executor``'s one thread, in the order they come."""

    def __init__(
        self,
        model: ScoringModel,
        executor: ThreadPoolExecutor | None = None,
        host_ttl_s: float | None = None,
    ) -> None:
        self.model = model
        self.executor = executor or ThreadPoolExecutor(1, thread_name_prefix="scoring")
        self.window = int(model.window)
        # Split scoring (cached per-flow encodings) when the model supports it.
        self.split_scoring = model.split is not None
        self.state_width = int(model.state_width) if self.split_scoring else int(model.n_inputs)
        self.state_tag = bytes(model.state_tag) if self.split_scoring else b""
        self.host_ttl_s = host_ttl_s
        # host states as the scoring thread last wrote them (host -> (chunk sequence, state)):
        # a chunk queued behind another reads its hosts' newest state from here, as the one
        # before it may not be collected by the event loop yet (see compute_queued);
        # ``generation`` changes when state is dropped
        self.unmerged: dict[bytes, tuple[int, HostHistory]] = {}
        self.unmerged_lock = threading.Lock()
        self.generation = 0
        self.sequence = 0  # the last chunk handed to the scoring thread
        self.read_sequence = 0  # the last chunk that has read its states there

    def start(
        self,
        chunk: Chunk,
        histories: dict[bytes, HostHistory],
        committed: Mapping[int, int] | None,
    ) -> Running:
        """Hand ``chunk`` to the scoring thread with its hosts' ``histories`` as read now."""
        self.sequence += 1
        future = asyncio.get_running_loop().run_in_executor(
            self.executor,
            self.compute_queued,
            chunk,
            histories,
            committed,
            self.sequence,
            self.generation,
        )
        return Running(future, chunk, self.sequence)

    def compute_queued(
        self,
        chunk: Chunk,
        histories: dict[bytes, HostHistory],
        committed: Mapping[int, int] | None,
        sequence: int,
        generation: int,
    ) -> Computed:
        """:meth:`compute` (scoring thread) with the states of chunks scored before this one
        but not yet collected, which ``histories`` (read when it was queued) lacks."""
        keys = chunk.valid.keys
        with self.unmerged_lock:
            current = generation == self.generation
            self.read_sequence = sequence
            if current and self.unmerged:
                for key in set(keys) - {HOSTLESS_KEY}:  # as HostState.histories
                    newer = self.unmerged.get(key)
                    if newer is not None:
                        histories[key] = newer[1]
        result = self.compute(chunk, histories, committed)
        with self.unmerged_lock:
            if current and generation == self.generation:
                for key, history in result.updated.items():
                    self.unmerged[key] = (sequence, history)
        return result

    def compute(
        self,
        chunk: Chunk,
        histories: dict[bytes, HostHistory],
        committed: Mapping[int, int] | None,
    ) -> Computed:
        """Windows and scores of ``chunk`` (scoring thread)."""
        started = time.perf_counter()
        valid, model = chunk.valid, self.model
        # one encoder pass for the chunk's new flows (split model); the older ones come from
        # the table
        rows = model.encode(chunk.inputs) if self.split_scoring else chunk.inputs
        batch = build_batch_windows(
            rows,
            valid.keys,
            histories,
            self.window,
            positions=valid.positions,
            partitions=valid.partitions,
            committed=committed,
            times=valid.times,
            ttl=self.host_ttl_s,
        )
        if self.split_scoring:
            scores = model.score_encoded(batch.windows, batch.lengths)
        else:
            scores = model.score_windows(batch.windows)
        seconds = time.perf_counter() - started
        return Computed(scores, batch.lengths, batch.updated, batch.redelivered, seconds)

    async def collect(self, running: Running) -> Computed:
        """Wait for ``running``'s result; the caller keeps its host states from now on."""
        computed = await running.future
        with self.unmerged_lock:
            # States of collected chunks are in the caller's pending states (then the table),
            # where the chunks handed over from now on find them; they can go once every chunk
            # handed over before has read its states (a queued one may not have yet)
            if self.read_sequence >= self.sequence and self.unmerged:
                collected = running.sequence
                self.unmerged = {
                    key: entry for key, entry in self.unmerged.items() if entry[0] > collected
                }
        return computed

    def forget(self) -> None:
        """Drop the thread's record of states: chunks still queued read and write nothing."""
        with self.unmerged_lock:
            self.generation += 1
            self.unmerged.clear()
