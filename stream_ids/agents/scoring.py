"""The scoring agent's work per batch of ``flows`` events.

For a batch taken with ``stream.take_events(batch_size, within=max_wait_s)``:

1. every message is validated (:func:`stream_ids.records.parse_message`); a bad one becomes one
   ``flows-dlq`` record (reason code, detail, base64 raw bytes and key, topic/partition/offset);
2. the good flows' hosts' histories are read from the table (event loop thread);
3. transform, window building (table history + earlier flows of the same host in the batch)
   and the model run in a single-thread executor, so the event loop never blocks;
4. each host's new history is written back to the table (one changelog record per host per
   batch), then one verdict per flow goes to ``verdicts`` and the attacks to ``alerts``;
5. the batch's counts go to the worker's rolling statistics.

Every input flow therefore ends as exactly one verdict or exactly one dead-letter record.
"""

from __future__ import annotations

import asyncio
import logging
import time
from concurrent.futures import ThreadPoolExecutor
from typing import Any

import numpy as np
import orjson

from stream_ids.errors import InvalidRecordError
from stream_ids.records import FlowIn, dead_letter, parse_message
from stream_ids.rolling import Counts, RollingStats
from stream_ids.schema import is_benign_label
from stream_ids.tables import (
    HOSTLESS_KEY,
    build_batch_windows,
    decode_history,
    encode_history,
)
from stream_ids.topics import Topics

log = logging.getLogger(__name__)


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
    ) -> None:
        self.model = model
        self.table = table
        self.topics = topics
        self.stats = stats
        self.metrics = metrics
        self.executor = executor or ThreadPoolExecutor(1, thread_name_prefix="scoring")
        self.window = int(model.window)
        self.n_features = int(model.n_inputs)
        self.threshold = float(model.threshold)
        self.model_version = str(model.model_version)
        self.flows_in = 0
        self.dead_letters = 0

    # -- validation ----------------------------------------------------------------------------
    def split(
        self, events: list[Any]
    ) -> tuple[list[FlowIn], list[bytes], list[tuple[bytes | None, dict[str, Any]]]]:
        """(good flows, their host keys, dead-letter (key, value) pairs) of a batch."""
        flows: list[FlowIn] = []
        keys: list[bytes] = []
        rejected: list[tuple[bytes | None, dict[str, Any]]] = []
        for event in events:
            message = event.message
            key = message.key
            if key is None:
                error = InvalidRecordError("key_mismatch", "the message has no key (source host)")
                parsed = [(None, error, message.value or b"")]
            else:
                parsed = parse_message(message.value, key)
            for flow, error, raw in parsed:
                if flow is not None:
                    flows.append(flow)
                    keys.append(key)
                elif error is not None:
                    rejected.append(
                        (
                            key,
                            dead_letter(
                                error, raw, key, message.topic, message.partition, message.offset
                            ),
                        )
                    )
        return flows, keys, rejected

    # -- scoring (executor thread) -------------------------------------------------------------
    def compute(
        self, flows: list[FlowIn], keys: list[bytes], histories: dict[bytes, np.ndarray]
    ) -> tuple[np.ndarray, np.ndarray, dict[bytes, np.ndarray], float]:
        started = time.perf_counter()
        transformed = self.model.transform.transform_many(
            [{"features": flow.features, "protocol": flow.protocol} for flow in flows]
        )
        windows, lengths, updated = build_batch_windows(
            transformed, keys, histories, self.window
        )
        scores = self.model.score_windows(windows)
        return scores, lengths, updated, time.perf_counter() - started

    # -- one batch -----------------------------------------------------------------------------
    async def process(self, events: list[Any]) -> None:
        flows, keys, rejected = self.split(events)
        self.flows_in += len(flows) + len(rejected)
        if self.metrics is not None:
            self.metrics.count_consumed(len(flows) + len(rejected))
        for key, record in rejected:
            await self.topics.dead_letter.send(key=key, value=orjson.dumps(record))
            if self.metrics is not None:
                self.metrics.count_dead_letter(record["reason"])
        self.dead_letters += len(rejected)
        if not flows:
            return
        histories = {}
        for key in set(keys):
            if key != HOSTLESS_KEY:
                raw = self.table.get(key)
                if raw:
                    histories[key] = decode_history(raw, self.n_features)
        loop = asyncio.get_running_loop()
        scores, lengths, updated, seconds = await loop.run_in_executor(
            self.executor, self.compute, flows, keys, histories
        )
        for key, history in updated.items():
            self.table[key] = encode_history(history)
        await self.publish(flows, keys, scores, lengths, seconds)

    async def publish(
        self,
        flows: list[FlowIn],
        keys: list[bytes],
        scores: np.ndarray,
        lengths: np.ndarray,
        seconds: float,
    ) -> None:
        scored_at = time.time()
        threshold, version = self.threshold, self.model_version
        verdicts_send, alerts_send = self.topics.verdicts.send, self.topics.alerts.send
        predicted: list[bool] = []
        truth: list[bool | None] = []
        latencies: list[float] = []
        for flow, key, score, length in zip(
            flows, keys, scores.tolist(), lengths.tolist(), strict=True
        ):
            is_attack = score >= threshold
            verdict = {
                "flow_id": flow.flow_id,
                "src_ip": flow.src_ip,
                "dst_ip": flow.dst_ip,
                "dst_port": flow.dst_port,
                "protocol": flow.protocol,
                "timestamp": flow.timestamp,
                "produced_at": flow.produced_at,
                "scored_at": scored_at,
                "score": score,
                "is_attack": is_attack,
                "threshold": threshold,
                "model_version": version,
                "label": flow.label,
                "window_length": length,
            }
            value = orjson.dumps(verdict)
            await verdicts_send(key=key, value=value)
            if is_attack:
                await alerts_send(key=key, value=value)
            predicted.append(is_attack)
            truth.append(None if flow.label is None else not is_benign_label(flow.label))
            if flow.produced_at is not None:
                latencies.append(scored_at - flow.produced_at)
        counts = Counts.of(predicted, truth)
        self.stats.add(counts, scored_at)
        if self.metrics is not None:
            self.metrics.observe_batch(
                size=len(flows), scoring_seconds=seconds, latencies=latencies, alerts=counts.alerts
            )
