"""Step 4 of a batch: verdicts and alerts (and the dead letters of step 1) to their topics.

One verdict per scored flow goes to ``verdicts`` and the attacks' to ``alerts``, as whole
record batches per partition where the app's producer allows
(:class:`stream_ids.faust_fixes.record_batches.RecordBatchSender`), else through Faust's
per-record sends (test doubles). The chunk's counts go to the worker's rolling statistics.
"""

from __future__ import annotations

import time
from typing import Any

import numpy as np

from stream_ids.faust_fixes.record_batches import RecordBatchSender, record_batch_sender
from stream_ids.rolling import Counts, RollingStats
from stream_ids.schema import ATTACK, UNLABELLED, label_class
from stream_ids.topics import Topics
from stream_ids.wire import encode_dead_letter, encode_record, verdict_object
from stream_ids.worker.score import Scored
from stream_ids.worker.validate import DeadLetterOut


class Publisher:
    """Sends a worker's outcomes: dead letters, verdicts and alerts."""

    def __init__(
        self,
        topics: Topics,
        stats: RollingStats,
        threshold: float,
        model_version: str,
        metrics: Any = None,
        batch_publish: bool = True,
    ) -> None:
        self.topics = topics
        self.stats = stats
        self.metrics = metrics
        # the threshold in force: a calibration change replaces it (stream_ids.agents.calibration)
        self.threshold = threshold
        self.model_version = model_version
        # None: ask the app for its producer at the next chunk; False: per-record sends
        self._batches: RecordBatchSender | bool | None = None if batch_publish else False

    async def dead_letters(self, rejected: list[DeadLetterOut]) -> None:
        send = self.topics.dead_letter.send
        for key, record in rejected:
            await send(key=key, value=encode_dead_letter(record))
            if self.metrics is not None:
                self.metrics.count_dead_letter(record["reason"])

    def batch_sender(self) -> RecordBatchSender | None:
        """The record-batch sender over the app's producer (None: per-record sends)."""
        if self._batches is False:
            return None
        if self._batches is None:
            sender = record_batch_sender(self.topics.verdicts)
            if sender is False:
                self._batches = False
                return None
            if sender is None:
                return None  # not started yet: ask again next chunk
            self._batches = sender
        return self._batches if isinstance(self._batches, RecordBatchSender) else None

    async def verdicts(self, scored: Scored) -> None:
        """One verdict per flow of ``scored`` (alerts for the attacks), then its counts."""
        flows, keys, scores, lengths, seconds = scored
        scored_at = time.time()
        threshold, version = self.threshold, self.model_version
        verdicts_send, alerts_send = self.topics.verdicts.send, self.topics.alerts.send
        batches = self.batch_sender()
        verdict_out: list[tuple[bytes, bytes]] = []
        alert_out: list[tuple[bytes, bytes]] = []
        # the per-flow loop only builds the records; counts and latencies are numpy below
        predicted = np.asarray(scores) >= threshold
        for index, (key, score, length, is_attack) in enumerate(
            zip(keys, scores.tolist(), lengths.tolist(), predicted.tolist(), strict=True)
        ):
            value = encode_record(
                verdict_object(
                    flows,
                    index,
                    score=score,
                    is_attack=is_attack,
                    window_length=length,
                    scored_at=scored_at,
                    threshold=threshold,
                    model_version=version,
                )
            )
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
