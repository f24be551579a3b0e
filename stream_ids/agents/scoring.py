"""The scoring agent's work per batch of ``flows`` events.

For a batch taken with ``stream.take_events(batch_size, within=max_wait_s)``:

1. every message is validated (:func:`stream_ids.records.parse_message`); a bad one becomes one
   ``flows-dlq`` record (reason code, detail, base64 raw bytes and key, topic/partition/offset);
2. the good flows' hosts' histories are read from the table (event loop thread);
3. transform, window building (table history + earlier flows of the same host in the batch)
   and the model run in a single-thread executor, so the event loop never blocks. With a split
   model (:meth:`stream_ids.scorer.Scorer.enable_split`) the table holds each host's last T-1
   flow *encodings*: the encoder runs once per new flow, the LSTM head over the cached window;
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
import pandas as pd

from stream_ids.errors import InvalidRecordError
from stream_ids.records import (
    FlowIn,
    check_rows,
    dead_letter,
    parse_message,
    raw_bytes,
    row_error,
)
from stream_ids.rolling import Counts, RollingStats
from stream_ids.schema import FEATURE_NAMES, is_benign_label
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
        split: bool = True,
    ) -> None:
        self.model = model
        if split and getattr(model, "split", None) is None and hasattr(model, "enable_split"):
            model.enable_split()
        self.table = table
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

    # -- validation ----------------------------------------------------------------------------
    def split(
        self, events: list[Any]
    ) -> tuple[list[FlowIn], list[bytes], np.ndarray, list[tuple[bytes | None, dict[str, Any]]]]:
        """(good flows, their host keys, their feature matrix, dead-letter (key, value) pairs)."""
        flows: list[FlowIn] = []
        keys: list[bytes] = []
        origins: list[tuple[Any, Any]] = []  # (message, raw) per good flow
        rejected: list[tuple[bytes | None, dict[str, Any]]] = []

        def reject(message: Any, error: InvalidRecordError, raw: Any) -> None:
            rejected.append(
                (
                    message.key,
                    dead_letter(
                        error, raw_bytes(raw), message.key, message.topic, message.partition,
                        message.offset,
                    ),
                )
            )

        for event in events:
            message = event.message
            key = message.key
            if key is None:
                reject(message, InvalidRecordError("key_mismatch", "the message has no key"),
                       message.value)
                continue
            for flow, error, raw in parse_message(message.value, key, check=False):
                if flow is not None:
                    flows.append(flow)
                    keys.append(key)
                    origins.append((message, raw))
                elif error is not None:
                    reject(message, error, raw)
        matrix = np.array([flow.values for flow in flows], dtype=np.float64).reshape(
            len(flows), len(FEATURE_NAMES)
        )
        bad = check_rows(matrix) if len(flows) else np.zeros(0, dtype=bool)
        if bad.any():
            for index in np.flatnonzero(bad).tolist():
                message, raw = origins[index]
                reject(message, row_error(flows[index].values), raw)
            good = ~bad
            flows = [flow for flow, ok in zip(flows, good.tolist(), strict=True) if ok]
            keys = [key for key, ok in zip(keys, good.tolist(), strict=True) if ok]
            matrix = matrix[good]
        return flows, keys, matrix, rejected

    # -- scoring (executor thread) -------------------------------------------------------------
    def compute(
        self,
        flows: list[FlowIn],
        keys: list[bytes],
        matrix: np.ndarray,
        histories: dict[bytes, np.ndarray],
    ) -> tuple[np.ndarray, np.ndarray, dict[bytes, np.ndarray], float]:
        started = time.perf_counter()
        frame = pd.DataFrame(matrix, columns=list(FEATURE_NAMES))
        frame["protocol"] = np.array(
            [np.nan if flow.protocol is None else flow.protocol for flow in flows],
            dtype=np.float64,
        )
        transformed = self.model.transform.transform_many(frame)
        if self.split_scoring:
            # one encoder pass for the batch's new flows; the older T-1 come from the table
            encodings = self.model.encode(transformed)
            windows, lengths, updated = build_batch_windows(
                encodings, keys, histories, self.window
            )
            scores = self.model.score_encoded(windows, lengths)
        else:
            windows, lengths, updated = build_batch_windows(
                transformed, keys, histories, self.window
            )
            scores = self.model.score_windows(windows)
        return scores, lengths, updated, time.perf_counter() - started

    # -- one batch -----------------------------------------------------------------------------
    async def process(self, events: list[Any]) -> None:
        flows, keys, matrix, rejected = self.split(events)
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
                    histories[key] = decode_history(raw, self.n_features, self.state_tag)
        loop = asyncio.get_running_loop()
        scores, lengths, updated, seconds = await loop.run_in_executor(
            self.executor, self.compute, flows, keys, matrix, histories
        )
        for key, history in updated.items():
            self.table[key] = encode_history(history, self.state_tag)
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
