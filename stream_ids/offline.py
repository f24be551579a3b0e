"""Score flow files without Kafka, by the worker's rules (``evaluate`` and ``score``).

The worker dead-letters a flow that breaks a range rule (a NaN or Infinity outside the rate
features, a negative count, a magnitude above 1e15: :func:`stream_ids.wire.check_rows`), so
such a flow never enters its host's window; every other flow is scored in the window of its
source host's earlier valid flows, and alerts when its score reaches the model's threshold.
:func:`score_frame` does exactly that to a canonical frame, so the offline numbers are the
streaming ones.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import numpy as np
import pandas as pd

from stream_ids import schema
from stream_ids.quiet import expected_tracing
from stream_ids.scorer import Scorer
from stream_ids.wire import row_errors

# Score quantiles reported for unlabelled traffic.
QUANTILES: tuple[float, ...] = (0.5, 0.9, 0.99, 0.999)


@dataclass(frozen=True)
class OfflineScores:
    """Per flow: ``score`` (NaN when invalid), ``alert``, and the dead-letter ``reason``."""

    score: np.ndarray
    alert: np.ndarray
    valid: np.ndarray
    reason: np.ndarray  # object: None for valid flows, else a reason code of wire.REASONS

    @property
    def verdict(self) -> np.ndarray:
        """``alert``, ``benign`` or ``dead_letter`` per flow."""
        out = np.where(self.alert, "alert", "benign").astype(object)
        out[~self.valid] = "dead_letter"
        return out


def score_frame(scorer: Scorer, frame: pd.DataFrame) -> OfflineScores:
    """Score canonical flows as the worker would (see the module docstring)."""
    features = frame.loc[:, list(schema.FEATURE_NAMES)].to_numpy(dtype=np.float64)
    # the worker's one pass over the batch: each refused row with the rule it breaks
    errors = row_errors(features)
    invalid = np.zeros(len(frame), dtype=bool)
    invalid[list(errors)] = True
    reason = np.full(len(frame), None, dtype=object)
    for row, error in errors.items():
        reason[row] = error.reason
    score = np.full(len(frame), np.nan, dtype=np.float64)
    valid = ~invalid
    if valid.any():
        # Whole files in a few large batches of new shapes: tracing is expected here, and the
        # first prediction's CPU notices are not news (stream_ids.quiet).
        with expected_tracing():
            score[valid] = scorer.score_frame(frame.loc[valid].reset_index(drop=True))
    alert = np.zeros(len(frame), dtype=bool)
    alert[valid] = score[valid] >= scorer.threshold
    return OfflineScores(score=score, alert=alert, valid=valid, reason=reason)


def traffic_summary(scores: OfflineScores, mask: np.ndarray | None = None) -> dict[str, Any]:
    """Flows, dead letters, alerts, alert rate and score quantiles (no labels needed)."""
    keep = np.ones(len(scores.score), dtype=bool) if mask is None else mask
    valid = keep & scores.valid
    values = scores.score[valid]
    alerts = int(scores.alert[valid].sum())
    return {
        "flows": int(keep.sum()),
        "dead_letters": int((keep & ~scores.valid).sum()),
        "alerts": alerts,
        "alert_rate": alerts / len(values) if len(values) else None,
        "score_quantiles": {
            f"p{100 * q:g}": float(np.quantile(values, q)) for q in QUANTILES
        }
        if len(values)
        else {},
        "score_max": float(values.max()) if len(values) else None,
    }
